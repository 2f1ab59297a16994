// Talking to the server (scratchcnn.serve): JSON in, JSON out. A refusal ({"error": ...} with a
// 4xx/5xx status) becomes an Error carrying the server's message.

async function answerOf(response) {
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

/** GET `path` (with extra `headers`, e.g. the teacher's token); its JSON answer. */
export async function getJson(path, headers = {}) {
  return answerOf(await fetch(path, {headers}));
}

/** POST `body` as JSON to `path` (with extra `headers`); its JSON answer. */
export async function postJson(path, body, headers = {}) {
  return answerOf(await fetch(path, {method: "POST", headers: {"Content-Type": "application/json", ...headers},
                                     body: JSON.stringify(body)}));
}

/** A `"arrays": "float32"` answer of POST /api/predict made like the JSON form's: each layer's
 * maps (C, H, W) or values (D,) come as base64 of little-endian float32, turned into nested lists. */
export function unpackArrays(answer) {
  for (const out of answer.layers) {
    const bytes = Uint8Array.from(atob(out.maps ?? out.values), (c) => c.charCodeAt(0));
    const flat = new Float32Array(bytes.buffer);
    if (out.values !== undefined) { out.values = Array.from(flat); continue; }
    const [h, w, c] = out.shape;
    out.maps = Array.from({length: c}, (_, k) => Array.from({length: h}, (_, y) =>
      Array.from(flat.subarray((k * h + y) * w, (k * h + y + 1) * w))));
  }
  return answer;
}
