// invoke.mjs calls the app "goapp" through this sidecar with the official
// Dapr JS SDK over HTTP, as a user's app would, and prints what it got as
// one line of JSON on stdout for cmd/wapr/sdk_test.go to check.
//
// The sidecar's HTTP port comes from DAPR_HTTP_PORT, as `dapr run` (and
// `wapr run`) set it for an app.
import { CommunicationProtocolEnum, DaprClient, HttpMethod, LogLevel } from "@dapr/dapr";

const client = new DaprClient({
  daprHost: "127.0.0.1",
  daprPort: process.env.DAPR_HTTP_PORT,
  communicationProtocol: CommunicationProtocolEnum.HTTP,
  logger: { level: LogLevel.Error }, // keep stdout for the result
});

// attempt runs one call and reports its result or its error, so that one
// failure does not hide what the others did.
async function attempt(fn) {
  try {
    return { result: await fn() };
  } catch (e) {
    return { error: String(e?.message ?? e) };
  }
}

const out = {};
// The client polls GET /v1.0/metadata until it answers, before its first call.
out.start = await attempt(() => client.start());
out.post = await attempt(() => client.invoker.invoke("goapp", "echo", HttpMethod.POST, { hello: "world" }));
out.put = await attempt(() =>
  client.invoker.invoke("goapp", "echo", HttpMethod.PUT, "plain words", { headers: { "x-wapr-test": "from-js" } }),
);
// The SDK has no query parameter: it goes in the method name.
out.get = await attempt(() => client.invoker.invoke("goapp", "echo?x=1&y=two", HttpMethod.GET));
out.unknown = await attempt(() => client.invoker.invoke("nobody", "echo", HttpMethod.POST, { hello: "nobody" }));
await client.stop();
console.log(JSON.stringify(out));
