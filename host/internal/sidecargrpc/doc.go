// Package sidecargrpc carries service invocation between two wapr sidecars over
// gRPC: a unary call per invocation, multiplexed over HTTP/2 connections
// kept between the two. It is the alternative to package httpapi's
// HTTP/1.1 wire, chosen with wapr run --sidecar-wire grpc to measure one
// against the other; every sidecar of a mesh must use the same wire. It is
// not daprd's internal gRPC service (dapr.proto.internals.v1), so a wapr
// and a daprd still cannot call each other.
//
// The calling sidecar's SidecarClient implements api.SidecarChannel; the
// called sidecar's SidecarServer hands each call to api.API.InvokeLocal.
// The messages are framed by a small codec of this package (codec.go), not
// protobuf, and carry the verb, method, query, headers and body of the
// call, the caller's and the callee's app ids, and back the app's status,
// headers and body, or the called sidecar's error.
//
// Measured end to end (cmd/wapr-bench --scenarios invoke --sidecar-wire
// http,grpc: load, two wapr processes and the app on 2 cores, 64 callers,
// 1 KiB bodies), this wire made fewer system calls than HTTP/1.1 (about 5
// against 7 per call in each sidecar) and spent less time in the kernel,
// but more in user space and had more context switches: about 100 µs of CPU
// per call in each sidecar against 72 µs, and 0.75 times the throughput.
// So HTTP/1.1 stays the default.
package sidecargrpc
