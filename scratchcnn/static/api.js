// Talking to the server (scratchcnn.serve): JSON in, JSON out. A refusal ({"error": ...} with a
// 4xx/5xx status) becomes an Error carrying the server's message.

async function answerOf(response) {
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

/** GET `path`; its JSON answer. */
export async function getJson(path) {
  return answerOf(await fetch(path));
}

/** POST `body` as JSON to `path`; its JSON answer. */
export async function postJson(path, body) {
  return answerOf(await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                     body: JSON.stringify(body)}));
}
