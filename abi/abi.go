// Package abi is wapr's WebAssembly component ABI, version 1: the names of
// the guest exports and host import modules, the status codes, the
// operation numbers, and the message codec both sides use. SPEC.md is the
// normative description, written so a component can be implemented in any
// language from it alone; this package is its Go implementation, shared by
// the host and the guest SDK.
//
// The package uses only the standard library and builds for GOOS=wasip1.
//
// # The call protocol in one paragraph
//
// The guest owns all of its memory. To run an operation the host calls one
// export, e.g. wapr_state(op, in_len) -> i64. The guest pulls the encoded
// request with input_read(buf, limit), does its work, pushes the encoded
// response with output_write(ptr, len), and returns Pack(status, out_len).
// No exported allocator, no pinning: the host only writes into a buffer the
// guest names during that very call.
package abi

// Version is the ABI version this package implements. The major version is
// part of every name (wapr_abi_v1, wapr_host_v1, …); minor versions add
// optional fields, operations and imports and are announced in the
// descriptor.
const (
	VersionMajor = 1
	VersionMinor = 3
)

// FeaturePollAhead, in a pub/sub guest's Descriptor.Features (since v1.3),
// lets the host poll a subscription again while messages of earlier polls
// are not yet settled (SPEC.md §7.3). It is wapr's, not one of Dapr's
// feature names, and the host does not report it as a component feature.
const FeaturePollAhead = "POLL_AHEAD"

// Guest exports. Signatures use Wasm types; i32 values are unsigned unless
// noted. Every export that returns i64 returns Pack(status, out_len).
const (
	// ExportMarker () -> (): never called; its presence declares ABI v1.
	ExportMarker = "wapr_abi_v1"
	// ExportInfo () -> i64: pushes the component's Descriptor.
	ExportInfo = "wapr_info"
	// ExportInit (in_len i32) -> i64: pulls an InitRequest (the
	// component's metadata) and connects. Called once per instance.
	ExportInit = "wapr_init"
	// ExportState (op i32, in_len i32) -> i64: state store operations
	// (StateGet…StateTransact).
	ExportState = "wapr_state"
	// ExportPubSub (op i32, in_len i32) -> i64: pub/sub operations
	// (PubSubPublish…PubSubBulkPublish).
	ExportPubSub = "wapr_pubsub"
	// ExportBinding (op i32, in_len i32) -> i64: binding operations
	// (BindingInvoke, BindingRead, BindingAck).
	ExportBinding = "wapr_binding"
	// ExportTick () -> i64: housekeeping; lets the guest's background
	// goroutines run and its GC work off the request path. Optional.
	ExportTick = "wapr_tick"
	// ExportClose () -> i64: releases connections before the instance is
	// dropped. Optional.
	ExportClose = "wapr_close"
	// ExportInitialize is the reactor initialiser Go's c-shared build mode
	// (and other toolchains) emit; the host calls it once, first.
	ExportInitialize = "_initialize"
	// ExportMemory is the guest's linear memory, which must be exported.
	ExportMemory = "memory"
)

// Host import modules. A guest imports only what it uses; the host refuses
// to load a guest that imports a module it was not granted.
const (
	// ModuleHost is the core protocol, always granted:
	//   input_read(buf i32, limit i32) -> i32
	//   output_write(ptr i32, len i32) -> i32
	ModuleHost = "wapr_host_v1"
	// ModuleLog is logging into the host's logger:
	//   log(level i32, ptr i32, len i32)
	//   log_enabled(level i32) -> i32
	ModuleLog = "wapr_log_v1"
	// ModuleSock is outbound TCP through the host:
	//   dial(addr_ptr i32, addr_len i32, flags i32, timeout_ms i32) -> i32
	//   read(handle i32, buf i32, limit i32) -> i32
	//   write(handle i32, ptr i32, len i32) -> i32
	//   wait(handle i32, timeout_ms i32) -> i32
	//   close(handle i32) -> i32
	ModuleSock = "wapr_sock_v1"
	// ModuleHTTP is outbound HTTP through the host:
	//   request(req_ptr i32, req_len i32) -> i32
	//   response_read(buf i32, limit i32) -> i32
	ModuleHTTP = "wapr_http_v1"
	// ModuleWASI is WASI preview 1; the host offers clocks, random and
	// stdout/stderr (into its log), never files, environment or arguments.
	ModuleWASI = "wasi_snapshot_preview1"
)

// Host function names inside the import modules.
const (
	FuncInputRead        = "input_read"
	FuncOutputWrite      = "output_write"
	FuncLog              = "log"
	FuncLogEnabled       = "log_enabled"
	FuncSockDial         = "dial"
	FuncSockRead         = "read"
	FuncSockWrite        = "write"
	FuncSockWait         = "wait"
	FuncSockClose        = "close"
	FuncHTTPRequest      = "request"
	FuncHTTPResponseRead = "response_read"
)

// Status is the outcome of an operation, in the high 32 bits of an export's
// result. Any status but OK comes with an ErrorRecord as output.
type Status uint32

// Status codes.
const (
	StatusOK              Status = 0
	StatusNotFound        Status = 1 // key or object does not exist
	StatusETagMismatch    Status = 2 // optimistic concurrency conflict
	StatusETagInvalid     Status = 3 // the ETag is malformed
	StatusInvalidArgument Status = 4 // the request is malformed for the component
	StatusNotSupported    Status = 5 // the operation or option is not offered
	StatusUnavailable     Status = 6 // the backend cannot be reached; retry may help
	StatusInternal        Status = 7 // anything else
	StatusDeadline        Status = 8 // the operation ran out of time
	StatusTooLarge        Status = 9 // a value or response exceeds a limit
)

var statusNames = [...]string{"OK", "NOT_FOUND", "ETAG_MISMATCH", "ETAG_INVALID", "INVALID_ARGUMENT", "NOT_SUPPORTED", "UNAVAILABLE", "INTERNAL", "DEADLINE", "TOO_LARGE"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "STATUS_" + uitoa(uint64(s))
}

// Pack builds an export's i64 result: status in the high 32 bits, the total
// number of bytes the guest passed to output_write during the call in the
// low 32 bits (the host checks it against what it received).
//
// Example: Pack(StatusNotFound, 12) = 0x0000_0001_0000_000C.
func Pack(s Status, outLen uint32) uint64 { return uint64(s)<<32 | uint64(outLen) }

// Unpack splits an export's i64 result.
func Unpack(r uint64) (Status, uint32) { return Status(r >> 32), uint32(r) }

// State operations (the op argument of wapr_state).
const (
	StateGet        uint32 = 1 // StateGetRequest → StateGetResponse (NOT_FOUND when missing)
	StateSet        uint32 = 2 // StateSetRequest → nothing
	StateDelete     uint32 = 3 // StateDeleteRequest → nothing
	StateBulkGet    uint32 = 4 // StateBulkGetRequest → StateBulkGetResponse
	StateBulkSet    uint32 = 5 // StateBulkSetRequest → BulkResult
	StateBulkDelete uint32 = 6 // StateBulkDeleteRequest → BulkResult
	StateTransact   uint32 = 7 // StateTransactRequest → nothing; all or none
)

// Pub/sub operations (the op argument of wapr_pubsub).
const (
	PubSubPublish   uint32 = 1 // PublishRequest → nothing
	PubSubSubscribe uint32 = 2 // SubscribeRequest → nothing; prepares a subscriber instance
	PubSubPoll      uint32 = 3 // PollRequest → PollResponse (possibly empty)
	PubSubAck       uint32 = 4 // AckRequest → nothing
	PubSubNack      uint32 = 5 // AckRequest → nothing; redeliver later
	// PubSubBulkPublish (ABI 1.2) publishes several messages, possibly to
	// different topics, in request order: BulkPublishRequest → BulkResult
	// (one ItemError, with its index, per entry that failed). A guest
	// without it answers NOT_SUPPORTED.
	PubSubBulkPublish uint32 = 6
)

// Binding operations (the op argument of wapr_binding).
const (
	BindingInvoke uint32 = 1 // InvokeRequest → InvokeResponse (empty output: no content)
	BindingRead   uint32 = 2 // ReadRequest → ReadResponse (possibly empty)
	BindingAck    uint32 = 3 // ReadAckRequest → nothing
)

// Log levels of wapr_log_v1.log (slog's numbering).
const (
	LogDebug int32 = -4
	LogInfo  int32 = 0
	LogWarn  int32 = 4
	LogError int32 = 8
)

// Flags of wapr_sock_v1.dial.
const (
	// SockTLS asks the host to run TLS on the connection (verifying the
	// server against the host's roots); the guest sees plaintext.
	SockTLS int32 = 1
)

// Negative results of wapr_sock_v1 and wapr_http_v1 functions.
const (
	ErrAgain   int32 = -1 // nothing to read yet (non-blocking read)
	ErrClosed  int32 = -2 // the handle is closed or unknown
	ErrDenied  int32 = -3 // the destination is not on the allow-list
	ErrTimeout int32 = -4 // the deadline passed
	ErrInvalid int32 = -5 // bad arguments (address, pointer, length)
	ErrIO      int32 = -6 // connection failed or reset
	ErrLimit   int32 = -7 // too many open handles, or a size cap
	ErrRefused int32 = -8 // connection refused or the name does not resolve
)

func uitoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
