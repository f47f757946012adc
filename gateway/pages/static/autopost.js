// Submit the form on this page once it has loaded (a provider request that is too
// long for a URL, or a callback re-posted from our own origin). A plain file, not
// an inline script, so the Content-Security-Policy can forbid inline scripts.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("autopost");
  if (form) { form.submit(); }
});
