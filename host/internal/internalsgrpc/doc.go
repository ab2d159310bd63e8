// Package internalsgrpc speaks daprd's sidecar-to-sidecar protocol, the
// gRPC service dapr.proto.internals.v1.ServiceInvocation, so that wapr and
// daprd sidecars call each other: a daprd invoking an app behind wapr, or an
// actor placement put on a wapr, and the other way round.
//
// Server answers CallLocal and CallLocalStream (service invocation into this
// sidecar's app, through api.API.InvokeLocal, exactly as a call that arrived
// over wapr's own wire), CallActor (an actor call, through the actor
// runtime's CallLocal: placement, turns and reentrancy as for any forwarded
// call) and CallActorReminder (handed to the function SetReminders gives,
// Unimplemented until there is one). CallActorStream is not served
// (Unimplemented): daprd uses it for workflows only.
//
// Client is the calling end: an api.SidecarChannel that sends an actor call
// (an invocation carrying api.ActorCallHeader) as CallActor and any other
// invocation as CallLocal, over one plaintext HTTP/2 connection per called
// sidecar.
//
// The messages are Dapr's generated ones (github.com/dapr/dapr/pkg/proto);
// convert.go maps them to api's types the way daprd does: HTTP headers
// travel as the request's metadata, the app's status as Status.Code (an
// HTTP status, >= 100), the body as Message.Data.Value and its content type
// as Message.ContentType.
package internalsgrpc
