// Passkeys: register one on the account page, sign a contract with one on the sign page.
// The server makes the options (and keeps the challenge); this file only carries them to
// navigator.credentials and puts the answer into the form, which is then submitted as usual.
"use strict";

(function () {
  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken(form) {
    var field = form.querySelector("input[name=_csrf_token]");
    return field ? field.value : "";
  }

  function say(form, message) {
    var problem = form.querySelector("[role=alert]");
    if (problem) {
      problem.textContent = message;
      problem.hidden = !message;
    }
  }

  function ask(form, url) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(form), "Accept": "application/json" },
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.detail || response.statusText);
        return body;
      });
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.user = Object.assign({}, json.user, { id: fromBase64url(json.user.id) });
    options.excludeCredentials = (json.excludeCredentials || []).map(function (item) {
      return Object.assign({}, item, { id: fromBase64url(item.id) });
    });
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.allowCredentials = (json.allowCredentials || []).map(function (item) {
      return Object.assign({}, item, { id: fromBase64url(item.id) });
    });
    return options;
  }

  function registration(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        attestationObject: toBase64url(response.attestationObject),
        transports: response.getTransports ? response.getTransports() : [],
      },
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    };
  }

  function assertion(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        authenticatorData: toBase64url(response.authenticatorData),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
      },
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    };
  }

  function unsupported(form) {
    if (window.PublicKeyCredential && navigator.credentials) return false;
    say(form, form.getAttribute("data-unsupported") || "This browser cannot use passkeys.");
    return true;
  }

  // The account page: the form's own submit first makes the passkey, then sends the form.
  var registerForm = document.getElementById("passkey-form");
  if (registerForm) {
    registerForm.addEventListener("submit", function (event) {
      if (registerForm.elements.credential.value) return; // the passkey is made: send the form
      event.preventDefault();
      if (unsupported(registerForm)) return;
      say(registerForm, "");
      ask(registerForm, registerForm.getAttribute("data-options-url"))
        .then(function (answer) {
          registerForm.elements.nonce.value = answer.nonce;
          return navigator.credentials.create({ publicKey: creationOptions(answer.publicKey) });
        })
        .then(function (credential) {
          registerForm.elements.credential.value = JSON.stringify(registration(credential));
          registerForm.submit();
        })
        .catch(function (error) { say(registerForm, error.message || String(error)); });
    });
  }

  // The sign page: the passkey button asks for the signing request, has the passkey sign its
  // challenge (SHA-256 of the payload that names the document), then sends the form.
  var signButton = document.getElementById("sign-with-passkey");
  if (signButton) {
    var signForm = signButton.form;
    signButton.addEventListener("click", function (event) {
      event.preventDefault();
      if (unsupported(signForm)) return;
      say(signForm, "");
      ask(signForm, signButton.getAttribute("data-request-url"))
        .then(function (answer) {
          signForm.elements.nonce.value = answer.nonce;
          var payload = document.getElementById("signing-payload");
          if (payload) {
            payload.textContent = answer.payload;
            payload.hidden = false;
          }
          return navigator.credentials.get({ publicKey: requestOptions(answer.publicKey) });
        })
        .then(function (credential) {
          signForm.elements.method.value = "webauthn";
          signForm.elements.credential.value = JSON.stringify(assertion(credential));
          signForm.submit();
        })
        .catch(function (error) { say(signForm, error.message || String(error)); });
    });
  }
})();
