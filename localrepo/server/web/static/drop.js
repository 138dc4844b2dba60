// A form with data-drop-into="<id of its file field>" takes files dropped anywhere on
// it: they go into that field, and its change event fires (the Try it form posts on
// change, through htmx); with data-drop-submit the form is then submitted (the
// gallery's upload, which images.js sends file by file). A file dropped on the bare
// field already works in a browser; this makes the whole form the target, and shows
// it while dragging.
(function () {
  "use strict";
  document.querySelectorAll("form[data-drop-into]").forEach(function (form) {
    var input = document.getElementById(form.getAttribute("data-drop-into"));
    if (!input) return;
    ["dragenter", "dragover"].forEach(function (type) {
      form.addEventListener(type, function (e) { e.preventDefault(); form.classList.add("dropping"); });
    });
    form.addEventListener("dragleave", function () { form.classList.remove("dropping"); });
    form.addEventListener("drop", function (e) {
      e.preventDefault();
      form.classList.remove("dropping");
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      input.files = e.dataTransfer.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
      if (form.hasAttribute("data-drop-submit")) form.requestSubmit();
    });
  });
})();
