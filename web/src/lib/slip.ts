/** The intake slip's tracking address: the link's own URL when the gateway gives an absolute
 * one, else this console's origin with it. */
export function trackingAddress(url: string, origin: string): string {
  return /^https?:\/\//.test(url) ? url : `${origin.replace(/\/$/, "")}/${url.replace(/^\//, "")}`;
}
