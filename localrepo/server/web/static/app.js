// Every page: a form (or its submit button) with data-confirm asks before it is sent.
// Listened for in the capture phase, so that a refusal also stops htmx's own handler.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var asker = e.submitter && e.submitter.hasAttribute("data-confirm") ? e.submitter : e.target;
    var question = asker && asker.getAttribute && asker.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      e.preventDefault();
      e.stopPropagation();
    }
  }, true);
})();
