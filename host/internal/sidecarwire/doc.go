// Package sidecarwire carries service invocation and actor calls between
// sidecars over one of two wires of wapr's own, chosen with wapr run
// --sidecar-wire (package httpapi has a third, HTTP/1.1):
//
//   - mux (mux.go, the default): calls framed by hand and multiplexed over
//     one TCP connection the calling sidecar keeps to each called one;
//     concurrent calls share writes.
//   - grpc: a gRPC unary call per invocation over HTTP/2, under a service
//     name of wapr's own.
//
// daprd's own protocol, the gRPC service dapr.proto.internals.v1, is
// package internalsgrpc's. The mux wire's port serves it too (sniff.go): a
// MuxServer given an HTTP2Server (ServeHTTP2) hands it every connection that
// opens with HTTP/2's preface, so a daprd calls a wapr on the very address
// wapr gives placement and name resolution. A MuxClient made with
// NewMuxClientWith calls a peer that answers the mux preface in HTTP/2 (a
// daprd) through the channel it was given, the internals client, from then
// on; wapr sidecars keep calling each other on the mux wire, which costs
// about an eighth of the internals gRPC per call in BenchmarkWire
// (docs/building-blocks/invoke.md).
//
// On both wires the calling sidecar's client (MuxClient, GRPCClient)
// implements api.SidecarChannel and the called sidecar's server (MuxServer,
// GRPCServer) hands each call to api.API.InvokeLocal (an actor call is an
// invocation marked with api.ActorCallHeader). The messages are those of
// codec.go, not protobuf: the verb, method, query, headers and body of the
// call, the caller's and the callee's app ids and the caller's namespace,
// and back the app's status, headers and body, or the called sidecar's
// error.
//
// docs/building-blocks/invoke.md gives what each wire costs.
package sidecarwire
