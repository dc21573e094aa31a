// A button with data-confirm="question" asks before its form is sent (no inline script: the pages'
// Content-Security-Policy allows scripts from /static only). Without JavaScript the form is sent as it is.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var question = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
