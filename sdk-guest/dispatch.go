package guest

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/wapr-dev/wapr/abi"
)

// family is an export that carries requests.
type family uint8

const (
	famInfo family = iota + 1
	famInit
	famState
	famPubSub
	famBinding
	famTick
	famClose
)

// familyOf maps an export name (abi.Export*) to its family; 0 if unknown.
func familyOf(export string) family {
	switch export {
	case abi.ExportInfo:
		return famInfo
	case abi.ExportInit:
		return famInit
	case abi.ExportState:
		return famState
	case abi.ExportPubSub:
		return famPubSub
	case abi.ExportBinding:
		return famBinding
	case abi.ExportTick:
		return famTick
	case abi.ExportClose:
		return famClose
	}
	return 0
}

// Buffer policy: the input buffer and the output encoder's buffer are kept
// across calls so a steady stream of requests allocates nothing for them;
// one larger than maxRetained is dropped after its call, so a single huge
// request does not pin its memory for the life of the instance.
const (
	minBuffer   = 1 << 10
	maxRetained = 256 << 10
)

// Housekeeping in wapr_tick.
const (
	tickYields = 8       // runtime.Gosched calls, letting background goroutines run
	gcGrowth   = 1 << 20 // heap growth since the last collection that triggers runtime.GC
)

// dispatcher serves one component: it decodes requests, calls the
// component and encodes responses. It is used by one call at a time.
type dispatcher struct {
	err       error // registration problem: every call fails with it
	desc      abi.Descriptor
	component any

	initer        Initer
	store         StateStore
	bulk          BulkStateStore
	txn           TransactionalStateStore
	transactional bool // TRANSACTIONAL declared (and txn set)
	pubsub        PubSub
	bulkPub       BulkPublisher
	output        OutputBinding
	input         InputBinding
	closer        Closer
	ticker        Ticker

	initialised bool
	closed      bool

	in  []byte      // input buffer, reused
	out []byte      // output buffer, reused through enc
	enc abi.Encoder // appends to out
	req requests    // request structs, reused

	heapAfterGC uint64
}

// requests holds one struct per request type so decoding does not allocate
// them per call. Components must not keep pointers to them.
type requests struct {
	stateGet    abi.StateGetRequest
	stateSet    abi.StateSetRequest
	stateDelete abi.StateDeleteRequest
	bulkGet     abi.StateBulkGetRequest
	bulkSet     abi.StateBulkSetRequest
	bulkDelete  abi.StateBulkDeleteRequest
	transact    abi.StateTransactRequest
	publish     abi.PublishRequest
	bulkPublish abi.BulkPublishRequest
	subscribe   abi.SubscribeRequest
	poll        abi.PollRequest
	ack         abi.AckRequest
	invoke      abi.InvokeRequest
	read        abi.ReadRequest
	readAck     abi.ReadAckRequest
}

// inputBuffer returns the reusable input buffer sized n.
func (d *dispatcher) inputBuffer(n int) []byte {
	if cap(d.in) < n {
		d.in = make([]byte, n, max(n, minBuffer))
	}
	return d.in[:n]
}

// trim drops buffers grown past maxRetained; call it once the call's output
// has been handed over.
func (d *dispatcher) trim() {
	if cap(d.in) > maxRetained {
		d.in = nil
	}
	if cap(d.out) > maxRetained {
		d.out = nil
	}
}

// dispatch runs one call with its request in in and returns the status and
// the output (which aliases d.out until the next call).
func (d *dispatcher) dispatch(f family, op uint32, in []byte) (status abi.Status, out []byte) {
	d.enc.Reset(d.out)
	defer func() {
		if r := recover(); r != nil {
			status, out = d.failure(panicError(r))
		}
	}()
	if err := d.serve(context.Background(), f, op, in); err != nil {
		return d.failure(err)
	}
	d.out = d.enc.Bytes()
	return abi.StatusOK, d.out
}

// failure replaces the output with err's ErrorRecord.
func (d *dispatcher) failure(err error) (abi.Status, []byte) {
	status := StatusOf(err)
	if status == abi.StatusOK {
		status = abi.StatusInternal
	}
	rec := recordOf(err)
	d.enc.Reset(d.out)
	rec.Encode(&d.enc)
	d.out = d.enc.Bytes()
	return status, d.out
}

func (d *dispatcher) serve(ctx context.Context, f family, op uint32, in []byte) error {
	if d.err != nil {
		return d.err
	}
	switch f {
	case famInfo:
		d.desc.Encode(&d.enc)
		return nil
	case famInit:
		return d.init(ctx, in)
	case famTick:
		return d.tick(ctx)
	case famClose:
		return d.close(ctx)
	}
	switch {
	case d.closed:
		return &Error{Status: abi.StatusInternal, Message: "the component is closed"}
	case !d.initialised:
		return &Error{Status: abi.StatusInternal, Message: "the component is not initialised (wapr_init has not succeeded)"}
	}
	switch f {
	case famState:
		return d.serveState(ctx, op, in)
	case famPubSub:
		return d.servePubSub(ctx, op, in)
	case famBinding:
		return d.serveBinding(ctx, op, in)
	}
	return NotSupported("unknown export family")
}

func (d *dispatcher) init(ctx context.Context, in []byte) error {
	var req abi.InitRequest
	if err := req.Decode(in); err != nil {
		return badRequest(err)
	}
	if d.initialised {
		return InvalidArgument("wapr_init called twice")
	}
	if req.Type != "" && !contains(d.desc.Types, req.Type) {
		return InvalidArgument("this module provides " + strings.Join(d.desc.Types, ", ") + ", not " + req.Type)
	}
	if d.initer != nil {
		if err := d.initer.Init(ctx, Metadata{Name: req.Name, Type: req.Type, Properties: req.Metadata}); err != nil {
			return err
		}
	}
	d.initialised = true
	return nil
}

func (d *dispatcher) tick(ctx context.Context) error {
	for range tickYields {
		runtime.Gosched()
	}
	var err error
	if d.ticker != nil && d.initialised && !d.closed {
		err = d.ticker.Tick(ctx)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc >= d.heapAfterGC+gcGrowth {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		d.heapAfterGC = ms.HeapAlloc
	}
	return err
}

func (d *dispatcher) close(ctx context.Context) error {
	if d.closed {
		return nil
	}
	d.closed = true
	if d.closer != nil && d.initialised {
		return d.closer.Close(ctx)
	}
	return nil
}

func (d *dispatcher) serveState(ctx context.Context, op uint32, in []byte) error {
	s := d.store
	if s == nil {
		return NotSupported("the component is not a state store")
	}
	switch op {
	case abi.StateGet:
		r := &d.req.stateGet
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		resp, err := s.Get(ctx, r)
		if err != nil {
			return err
		}
		if resp == nil {
			return NotFound(r.Key)
		}
		resp.Encode(&d.enc)
		return nil
	case abi.StateSet:
		r := &d.req.stateSet
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		return s.Set(ctx, r)
	case abi.StateDelete:
		r := &d.req.stateDelete
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		return s.Delete(ctx, r)
	case abi.StateBulkGet:
		r := &d.req.bulkGet
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		if d.bulk == nil {
			return d.bulkGetEach(ctx, r)
		}
		resp, err := d.bulk.BulkGet(ctx, r)
		if err != nil {
			return err
		}
		if resp != nil {
			resp.Encode(&d.enc)
		}
		return nil
	case abi.StateBulkSet:
		r := &d.req.bulkSet
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		if d.bulk == nil {
			return d.bulkSetEach(ctx, r)
		}
		return d.encodeBulkResult(d.bulk.BulkSet(ctx, r))
	case abi.StateBulkDelete:
		r := &d.req.bulkDelete
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		if d.bulk == nil {
			return d.bulkDeleteEach(ctx, r)
		}
		return d.encodeBulkResult(d.bulk.BulkDelete(ctx, r))
	case abi.StateTransact:
		if !d.transactional {
			return NotSupported("transactions: the component does not declare the TRANSACTIONAL feature")
		}
		r := &d.req.transact
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		return d.txn.Transact(ctx, r)
	}
	return unknownOp("state", op)
}

func (d *dispatcher) encodeBulkResult(res *abi.BulkResult, err error) error {
	if err != nil {
		return err
	}
	if res != nil {
		res.Encode(&d.enc)
	}
	return nil
}

func (d *dispatcher) servePubSub(ctx context.Context, op uint32, in []byte) error {
	p := d.pubsub
	if p == nil {
		return NotSupported("the component is not a pub/sub broker")
	}
	switch op {
	case abi.PubSubPublish:
		r := &d.req.publish
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		return p.Publish(ctx, r)
	case abi.PubSubBulkPublish:
		if d.bulkPub == nil {
			return NotSupported("bulk publish: the component does not implement guest.BulkPublisher")
		}
		r := &d.req.bulkPublish
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		return d.encodeBulkResult(d.bulkPub.BulkPublish(ctx, r))
	case abi.PubSubSubscribe:
		r := &d.req.subscribe
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		return p.Subscribe(ctx, r)
	case abi.PubSubPoll:
		r := &d.req.poll
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		resp, err := p.Poll(ctx, r)
		if err != nil {
			return err
		}
		if resp != nil {
			resp.Encode(&d.enc)
		}
		return nil
	case abi.PubSubAck, abi.PubSubNack:
		r := &d.req.ack
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		if op == abi.PubSubAck {
			return p.Ack(ctx, r)
		}
		return p.Nack(ctx, r)
	}
	return unknownOp("pub/sub", op)
}

func (d *dispatcher) serveBinding(ctx context.Context, op uint32, in []byte) error {
	switch op {
	case abi.BindingInvoke:
		if d.output == nil {
			return NotSupported("the component is not an output binding")
		}
		r := &d.req.invoke
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		if len(d.desc.Operations) > 0 && !containsFold(d.desc.Operations, r.Operation) {
			return NotSupported("operation " + strconv.Quote(r.Operation) + " is not supported; supported: " + strings.Join(d.desc.Operations, ", "))
		}
		resp, err := d.output.Invoke(ctx, r)
		if err != nil {
			return err
		}
		if resp != nil {
			resp.Encode(&d.enc)
		}
		return nil
	case abi.BindingRead, abi.BindingAck:
		if d.input == nil {
			return NotSupported("the component is not an input binding")
		}
		if op == abi.BindingAck {
			r := &d.req.readAck
			if err := r.Decode(in); err != nil {
				return badRequest(err)
			}
			return d.input.ReadAck(ctx, r)
		}
		r := &d.req.read
		if err := r.Decode(in); err != nil {
			return badRequest(err)
		}
		resp, err := d.input.Read(ctx, r)
		if err != nil {
			return err
		}
		if resp != nil {
			resp.Encode(&d.enc)
		}
		return nil
	}
	return unknownOp("binding", op)
}

func badRequest(err error) error {
	return &Error{Status: abi.StatusInvalidArgument, Message: "malformed request", Err: err}
}

func unknownOp(what string, op uint32) error {
	return NotSupported(what + " operation " + strconv.FormatUint(uint64(op), 10) + " is not supported")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// panicError turns a recovered panic value into the error reported to the
// host, and writes the stack to stderr (the host's log).
func panicError(r any) error {
	var msg string
	switch v := r.(type) {
	case error:
		msg = v.Error()
	case string:
		msg = v
	case interface{ String() string }:
		msg = v.String()
	default:
		msg = "(a value that is neither a string nor an error)"
	}
	stack := make([]byte, 8<<10)
	stack = stack[:runtime.Stack(stack, false)]
	os.Stderr.Write(append([]byte("wapr guest: component panicked: "+msg+"\n"), stack...))
	return &Error{Status: abi.StatusInternal, Message: "component panicked: " + msg}
}
