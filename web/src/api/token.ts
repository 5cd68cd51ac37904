/** The bearer token: in memory, with a sessionStorage copy so a reload of the tab keeps the
 * user signed in; never localStorage (it would outlive the tab and be shared across tabs). */
const KEY = "console.token";
let token: string | null = null;

export function getToken(): string | null {
  if (token === null) token = sessionStorage.getItem(KEY);
  return token;
}

export function setToken(value: string | null): void {
  token = value;
  if (value === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, value);
}
