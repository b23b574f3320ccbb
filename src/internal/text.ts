/** Short renderings of untrusted text for crash reasons and log lines. */

/** At most `max` characters of `text`, quoted, for an error message. */
export const excerpt = (text: string, max = 120): string =>
  JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text)

/** `text` cut to at most `max` characters, with a mark when it was cut. */
export const truncate = (text: string, max: number): string =>
  text.length > max ? `${text.slice(0, max)}… [${text.length - max} more characters]` : text
