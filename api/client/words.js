// The API's validation errors ("password: Expected `str` of length >= 8") in plain words
// ("Password must be at least 8 characters"); anything else is shown as the server wrote it.

const FIELDS = {
  email: "Email", password: "Password", username: "Display name", subject: "Subject", description: "The description",
  body: "The message", title: "The title",
};

function fieldName(path) {
  const last = path.split(".").at(-1);
  return FIELDS[last] ?? last.charAt(0).toUpperCase() + last.slice(1).replace(/_/g, " ");
}

export function plainWords(message) {
  const [, path, problem] = /^([\w.]+): (.+)$/.exec(message ?? "") ?? [];
  if (!problem) return message;
  const field = fieldName(path);
  const [, sign, count] = /of length ([<>]=) (\d+)/.exec(problem) ?? [];
  if (sign === ">=" && count === "1") return `${field} must not be empty`;
  if (sign) return `${field} must be at ${sign === ">=" ? "least" : "most"} ${count} character${count === "1" ? "" : "s"}`;
  if (/matching regex|invalid/i.test(problem)) return `${field} is not valid`;
  if (/^Expected `str`/.test(problem)) return `${field} must be text`;
  return message;
}
