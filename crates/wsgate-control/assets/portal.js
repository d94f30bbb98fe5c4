// wsgate portals: the little behaviour the pages need beyond plain HTML forms. Every page
// works without it except the "Try it" console, which is a WebSocket client and so needs a
// script. Loaded with `defer` from our own origin (the Content-Security-Policy allows no
// inline script).
'use strict';

// Copy buttons: `data-copy` names the element whose text is copied.
function setUpCopyButtons() {
  for (const button of document.querySelectorAll('button[data-copy]')) {
    button.addEventListener('click', async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const text = source.textContent;
      let copied = false;
      try {
        await navigator.clipboard.writeText(text);
        copied = true;
      } catch (_) {
        // No clipboard permission (some browsers, plain http): select the text so that
        // Ctrl+C / Cmd+C copies it, and try the older command.
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        try { copied = document.execCommand('copy'); } catch (_) { copied = false; }
      }
      button.textContent = copied ? 'Copied' : 'Selected: press Ctrl+C';
      button.classList.toggle('copied', copied);
      setTimeout(() => { button.textContent = 'Copy'; button.classList.remove('copied'); }, 2500);
    });
  }
}

// "Add another endpoint": clones the last endpoint input, empty, with fresh ids.
function setUpEndpointAdder() {
  for (const button of document.querySelectorAll('button[data-add-endpoint]')) {
    button.addEventListener('click', () => {
      const fields = button.parentElement.querySelectorAll('.field');
      const last = fields[fields.length - 1];
      if (!last) return;
      const n = fields.length;
      const copy = last.cloneNode(true);
      copy.classList.remove('has-error');
      copy.querySelectorAll('.field-error').forEach((e) => e.remove());
      const label = copy.querySelector('label');
      const input = copy.querySelector('input');
      input.id = 'f-endpoint-' + n;
      input.value = '';
      input.removeAttribute('aria-invalid');
      input.setAttribute('aria-describedby', 'endpoints-hint');
      label.htmlFor = input.id;
      label.textContent = 'Endpoint ' + (n + 1);
      button.before(copy);
      input.focus();
    });
  }
}

// Forms with `data-confirm` ask before they do something that cannot be undone.
function setUpConfirmations() {
  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

// The "Try it" console: a WebSocket from this page through the gateway to the API. The token
// goes in the `access_token` query parameter, the one place browsers let it go; the log shows
// the URL without it. A browser does not tell a page why a handshake failed, so then the
// console asks the server (`data-diagnose`), which makes the same handshake and reports the
// gateway's own answer: its status and reason, or that the browser refused the certificate.
function setUpConsole() {
  const root = document.querySelector('.console[data-url]');
  if (!root) return;
  const part = (name) => root.querySelector('[data-console="' + name + '"]');
  const connect = part('connect');
  const disconnect = part('disconnect');
  const state = part('state');
  const form = part('form');
  const message = part('message');
  const send = part('send');
  const log = part('log');
  let socket = null;

  const write = (kind, text) => {
    const item = document.createElement('li');
    item.className = kind;
    item.textContent = text;
    log.append(item);
    log.scrollTop = log.scrollHeight;
  };
  const setOpen = (open, label) => {
    state.textContent = label;
    state.classList.toggle('open', open);
    connect.disabled = open;
    disconnect.disabled = !open;
    message.disabled = !open;
    send.disabled = !open;
  };

  // The gateway's HTTPS origin, where its certificate can be accepted.
  const origin = root.dataset.url.replace(/^wss:/, 'https:').replace(/^(https:\/\/[^/]+).*$/, '$1');
  const explain = async () => {
    write('info', 'asking the gateway why …');
    try {
      const body = new URLSearchParams({ csrf: root.dataset.csrf, token: root.dataset.token });
      const response = await fetch(root.dataset.diagnose, { method: 'POST', body, credentials: 'same-origin' });
      const answer = await response.json();
      if (answer.status === 101) {
        write('problem', 'the gateway accepts this connection, so your browser refused it: most likely the '
          + "gateway's certificate. Open " + origin + ' once, accept the certificate, then connect again.');
      } else if (answer.status > 0) {
        write('problem', 'the gateway answered ' + answer.status + ': ' + (answer.reason || '(no reason given)'));
      } else {
        write('problem', answer.reason);
      }
    } catch (_) {
      write('problem', 'the reason could not be fetched (is your session still open?)');
    }
  };

  connect.addEventListener('click', () => {
    const url = root.dataset.url + '?access_token=' + encodeURIComponent(root.dataset.token);
    let opened = false;
    write('info', 'connecting to ' + root.dataset.url + ' …');
    setOpen(false, 'Connecting…');
    connect.disabled = true;
    try {
      socket = new WebSocket(url);
    } catch (error) {
      write('info', 'cannot connect: ' + error.message);
      setOpen(false, 'Not connected');
      return;
    }
    socket.addEventListener('open', () => {
      opened = true;
      write('info', 'connected');
      setOpen(true, 'Connected');
      message.focus();
    });
    socket.addEventListener('message', (event) => {
      write('received', typeof event.data === 'string' ? event.data : '[binary message]');
    });
    socket.addEventListener('close', (event) => {
      const reason = event.reason ? ' (' + event.reason + ')' : '';
      // A socket that never opened has its failure explained already; 1006 would add nothing.
      if (opened) write('info', 'closed: code ' + event.code + reason);
      setOpen(false, 'Not connected');
      socket = null;
    });
    socket.addEventListener('error', () => {
      write('info', 'the connection failed');
      if (!opened) explain();
    });
  });

  disconnect.addEventListener('click', () => {
    if (socket) socket.close(1000, 'done');
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!socket || socket.readyState !== WebSocket.OPEN || message.value === '') return;
    socket.send(message.value);
    write('sent', message.value);
    message.value = '';
    message.focus();
  });
}

// After a refused submission, the cursor goes to the first field that needs fixing.
function focusFirstProblem() {
  const invalid = document.querySelector('[aria-invalid="true"]');
  if (invalid) invalid.focus();
}

setUpCopyButtons();
setUpEndpointAdder();
setUpConfirmations();
setUpConsole();
focusFirstProblem();
