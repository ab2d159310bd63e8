// Package sidecarwire carries service invocation between two wapr sidecars
// over one of two wires, chosen with wapr run --sidecar-wire (every sidecar
// of a mesh must use the same; package httpapi has the third, HTTP/1.1):
//
//   - mux (mux.go): calls framed by hand and multiplexed over one TCP
//     connection the calling sidecar keeps to each called one; concurrent
//     calls share writes.
//   - grpc: a gRPC unary call per invocation over HTTP/2.
//
// Neither is daprd's internal gRPC service (dapr.proto.internals.v1), so a
// wapr and a daprd still cannot call each other.
//
// On both wires the calling sidecar's client (MuxClient, GRPCClient)
// implements api.SidecarChannel and the called sidecar's server (MuxServer,
// GRPCServer) hands each call to api.API.InvokeLocal. The messages are those
// of codec.go, not protobuf: the verb, method, query, headers and body of the
// call, the caller's and the callee's app ids and the caller's namespace, and
// back the app's status, headers and body, or the called sidecar's error.
//
// docs/building-blocks/invoke.md gives what each wire costs.
package sidecarwire
