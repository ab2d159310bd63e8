// Package scheduler connects wapr to Dapr's scheduler, the engine behind
// durable actor reminders: Client speaks the scheduler protocol
// (dapr.proto.scheduler.v1) as daprd 1.18 does — WatchHosts to learn the
// scheduler members, a WatchJobs stream to each announcing this sidecar's
// app id, namespace and actor types, triggers acknowledged one by one with
// their outcome, and ScheduleJob, GetJob, DeleteJob for the reminders
// themselves — and Server runs Dapr's own scheduler server
// (github.com/dapr/dapr/pkg/scheduler/server, etcd embedded) in this
// process, on loopback, for a host given no scheduler address.
//
// wapr keeps no reminder itself: they live in the scheduler's etcd, which
// decides when each fires and sends every trigger to one connected
// sidecar, so a reminder fires once per period across a cluster of
// sidecars, whichever of them is up.
package scheduler
