// Posts the provider's answer back to the site at once, as the OpenID libraries' own pages do,
// but from a file so that the pages' Content-Security-Policy can forbid inline scripts.
document.forms[0].submit();
