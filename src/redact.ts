/**
 * Secrets never reach a terminal or a log: admin tokens (`sct_…`), join
 * tokens (`scj_…`), bearer credentials, PEM private keys and the password of a
 * PostgreSQL URL (`postgres://user:***@host/db`) are masked
 * wherever they appear. A bearer
 * credential is masked only when it looks like one (16+ token characters), so
 * prose such as "bearer token missing" stays readable.
 */
export function redact(text: string): string {
  return text
    .replace(/-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g, '[private key redacted]')
    .replace(/\b(Bearer)\s+[A-Za-z0-9._~+/=-]{16,}/gi, '$1 [redacted]')
    .replace(/\bsct_[A-Za-z0-9_-]+/g, 'sct_[redacted]')
    .replace(/\bscj_[A-Za-z0-9_-]+/g, 'scj_[redacted]')
    .replace(/\b(postgres(?:ql)?:\/\/[^:/?#@\s]*):[^@\s]*@/gi, '$1:***@');
}
