// The gallery's upload form, enhanced: files chosen in it (or dropped on it: drop.js
// puts them in the field and submits) are sent one by one, each with its own progress bar and outcome (added, duplicate, not an
// image). Without this script the form posts all files at once and the page reports.
(function () {
  "use strict";
  // (A button with data-confirm, Delete selected, asks first: app.js, on every page.)
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var input = document.getElementById("upload-files");
  var report = document.getElementById("upload-report");

  function line(name) {
    var li = document.createElement("li");
    var strong = document.createElement("strong");
    strong.textContent = name;
    var bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + name);
    var text = document.createElement("span");
    li.appendChild(strong); li.appendChild(document.createTextNode(": "));
    li.appendChild(text); li.appendChild(bar);
    report.appendChild(li);
    return { li: li, bar: bar, text: text };
  }

  function send(file) {
    return new Promise(function (done) {
      var row = line(file.name);
      var data = new FormData();
      data.append("csrf_token", form.elements.csrf_token.value);
      data.append("label", form.elements.label.value);
      if (form.elements.test_image && form.elements.test_image.checked) data.append("test_image", "1");
      data.append("files", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) row.bar.value = Math.round(100 * e.loaded / e.total);
      };
      xhr.onload = function () {
        row.bar.remove();
        var outcome = "rejected", message = "the server refused it (" + xhr.status + ")";
        try {
          var body = JSON.parse(xhr.responseText);
          if (body.files && body.files[0]) { outcome = body.files[0].outcome; message = body.files[0].message; }
          else if (body.errors) { message = Object.values(body.errors).join(" "); }
        } catch (err) { /* not JSON: keep the status */ }
        row.li.className = "upload-" + outcome;
        row.text.textContent = message;
        done();
      };
      xhr.onerror = function () { row.bar.remove(); row.text.textContent = "the server could not be reached"; done(); };
      xhr.send(data);
    });
  }

  function upload(files) {
    report.textContent = "";
    var queue = Array.prototype.slice.call(files);
    var chain = Promise.resolve();
    queue.forEach(function (file) { chain = chain.then(function () { return send(file); }); });
    chain.then(function () {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = window.location.pathname; a.textContent = "Show the gallery with the new images";
      li.appendChild(a); report.appendChild(li);
    });
  }

  form.addEventListener("submit", function (e) {
    var files = input.files;
    if (!files || !files.length) return; // the server names the missing files
    e.preventDefault();
    upload(files);
  });
})();
