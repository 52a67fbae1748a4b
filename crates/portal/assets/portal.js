// Amtsweg portal: progressive enhancement only — every page works without this script.
// 1. An error summary takes the focus, so screen readers announce it and the keyboard starts there.
// 2. A form marked data-once cannot be sent twice by a double click (the server would answer the same anyway).
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
  }
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent) {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "1";
    });
  });
});
