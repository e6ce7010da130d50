// Drives the official @sendgrid/mail client for tests/e2e/test_sendgrid_clients.py.
// Usage: node send.js '{"baseUrl": "http://gw/", "apiKey": "SG...", "sandbox": true|false|null, "msg": {...}?}'
// `msg` (optional) replaces the default message, in the client's own form (camelCase, as sgMail.send takes it).
// Prints one JSON line: {"status", "headers", "body"} — for a 2xx and for an error response alike.
'use strict';
const sgMail = require('@sendgrid/mail');

async function main() {
  const args = JSON.parse(process.argv[2]);
  sgMail.setApiKey(args.apiKey);
  // setApiKey resets the base URL, so it is set afterwards (shared/reference/provider-clients.md).
  sgMail.client.setDefaultRequest('baseUrl', args.baseUrl);
  const msg = args.msg || {
    to: 'recipient@example.com',
    from: 'sender@example.com',
    subject: 'Hello from the Node client',
    text: 'Hello, World!',
  };
  if (args.sandbox !== null && args.sandbox !== undefined) {
    msg.mailSettings = {sandboxMode: {enable: args.sandbox}};
  }
  try {
    const [response, body] = await sgMail.send(msg);
    return {status: response.statusCode, headers: response.headers, body};
  } catch (error) {
    if (!error.response) throw error;
    return {status: error.code, headers: error.response.headers, body: error.response.body};
  }
}

main().then(
  (result) => process.stdout.write(JSON.stringify(result) + '\n'),
  (error) => { process.stderr.write(String(error && error.stack || error) + '\n'); process.exit(1); },
);
