package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	commonv1pb "github.com/dapr/dapr/pkg/proto/common/v1"
	schedulerv1pb "github.com/dapr/dapr/pkg/proto/scheduler/v1"
)

// ErrAlreadyExists is returned by CreateReminder without Overwrite when
// the reminder exists.
var ErrAlreadyExists = errors.New("the reminder exists")

// callError is a scheduler call's error as the caller reports it: the
// scheduler's message without gRPC's prefix, AlreadyExists as
// ErrAlreadyExists.
func callError(err error) error {
	st, ok := status.FromError(err)
	switch {
	case err == nil || !ok:
		return err
	case st.Code() == codes.AlreadyExists:
		return fmt.Errorf("%w: %s", ErrAlreadyExists, st.Message())
	}
	return errors.New(st.Message())
}

// ErrNotStarted is returned by the job calls of a client that has been
// closed, or whose scheduler could not be started (wrapped with the cause).
var ErrNotStarted = errors.New("the scheduler is not available")

// Trigger is a reminder the scheduler says is due.
type Trigger struct {
	Name, ActorType, ActorID string
	// Data is the reminder's data as the app receives it: JSON, nil when
	// the reminder has none. The handler owns it.
	Data json.RawMessage
}

// Handler runs a trigger; a nil error acknowledges it as a success, any
// other as a failure (the scheduler then applies the job's failure policy:
// by default three more tries, a second apart).
type Handler func(ctx context.Context, t *Trigger) error

// Reminder is an actor reminder as the scheduler keeps it. Period is the
// scheduler's schedule ("@every 1s"), TTL its expiry as given, as daprd
// reports them.
type Reminder struct {
	ActorType, ActorID, Name string
	DueTime, Period, TTL     string
	// Repeats is how many times it fires (0: until deleted or expired).
	Repeats uint32
	// Data is JSON, nil when there is none.
	Data json.RawMessage
	// Overwrite replaces an existing reminder of the name (daprd's
	// default); false makes CreateReminder fail with ErrAlreadyExists.
	Overwrite bool
	// FailurePolicy is what the scheduler does when a trigger fails; nil
	// is its default.
	FailurePolicy *FailurePolicy
}

// FailurePolicy is Dapr's JobFailurePolicy: with Drop the scheduler gives
// up on a failed tick; else it tries again every Interval, at most
// MaxRetries times (nil: no limit).
type FailurePolicy struct {
	Drop       bool
	Interval   time.Duration
	MaxRetries *uint32
}

// proto is p as the scheduler takes it.
func (p *FailurePolicy) proto() *commonv1pb.JobFailurePolicy {
	if p == nil {
		return nil
	}
	if p.Drop {
		return &commonv1pb.JobFailurePolicy{Policy: &commonv1pb.JobFailurePolicy_Drop{Drop: &commonv1pb.JobFailurePolicyDrop{}}}
	}
	return &commonv1pb.JobFailurePolicy{Policy: &commonv1pb.JobFailurePolicy_Constant{Constant: &commonv1pb.JobFailurePolicyConstant{
		Interval: durationpb.New(p.Interval), MaxRetries: p.MaxRetries,
	}}}
}

// ClientOptions configure a Client.
type ClientOptions struct {
	AppID, Namespace string
	// ActorTypes are the actor types this sidecar hosts: the scheduler
	// sends it the triggers of their reminders. None: no WatchJobs stream
	// is opened.
	ActorTypes []string
	OnTrigger  Handler
	Logger     *slog.Logger
}

// Client is a client of Dapr's scheduler, as daprd 1.18 is one. It is safe
// for concurrent use.
type Client struct {
	opts ClientOptions
	log  *slog.Logger

	ready    chan struct{} // closed once connected to the members, or failed
	failOnce sync.Once
	failErr  error // set before ready is closed

	mu      sync.Mutex
	members map[string]*member // address → connection and its job stream
	order   []*member
	next    atomic.Uint64
	started bool

	ctx    context.Context // the client's life, until Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// member is one scheduler of the cluster: a connection, and the WatchJobs
// stream on it.
type member struct {
	addr   string
	conn   *grpc.ClientConn
	client schedulerv1pb.SchedulerClient
	cancel context.CancelFunc
}

// NewClient returns a client; Start connects it.
func NewClient(opts ClientOptions) *Client {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.ActorTypes = slices.Clone(opts.ActorTypes)
	slices.Sort(opts.ActorTypes)
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{opts: opts, log: opts.Logger, ready: make(chan struct{}), members: map[string]*member{}, ctx: ctx, cancel: cancel}
}

// Start connects to the scheduler at addresses (daprd's
// --scheduler-host-address; any member of the cluster): it asks one of them
// for the members (WatchHosts) and follows that list until Close, with a
// WatchJobs stream to each member. Start returns at once; the job calls wait
// until the members are known.
func (c *Client) Start(addresses []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.ctx.Err() != nil {
		return
	}
	c.started = true
	c.wg.Go(func() { c.watchHosts(addresses) })
}

// Fail makes every job call fail with err (wrapped in ErrNotStarted): the
// scheduler could not be started.
func (c *Client) Fail(err error) {
	c.failOnce.Do(func() {
		c.failErr = fmt.Errorf("%w: %w", ErrNotStarted, err)
		close(c.ready)
	})
}

func (c *Client) markReady() { c.failOnce.Do(func() { close(c.ready) }) }

// Close closes the streams and connections and waits for the handlers of
// triggers in flight, at most until ctx is done. Close twice is safe.
func (c *Client) Close(ctx context.Context) error {
	// Under mu: Start and setMembers add to wg only while ctx is live, so
	// no Add races the Wait below.
	c.mu.Lock()
	c.cancel()
	c.mu.Unlock()
	c.Fail(errors.New("closed"))
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.mu.Lock()
	for addr, m := range c.members {
		m.cancel()
		m.conn.Close()
		delete(c.members, addr)
	}
	c.order = nil
	c.mu.Unlock()
	return err
}

// watchHosts follows the cluster's members, reconnecting with a backoff.
func (c *Client) watchHosts(addresses []string) {
	for attempt := 0; c.ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(backoff(attempt)):
			}
		}
		addr := addresses[rand.IntN(len(addresses))]
		if err := c.watchHostsAt(addr, addresses); err != nil && c.ctx.Err() == nil {
			c.log.Warn("scheduler: watching its hosts failed; trying again", "address", addr, "error", err)
			continue
		}
		attempt = 0
	}
}

// watchHostsAt follows the members list one scheduler sends, until its
// stream ends. A scheduler without WatchHosts (older than Dapr 1.15) is
// taken as a cluster of the addresses given.
func (c *Client) watchHostsAt(addr string, given []string) error {
	conn, err := dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	stream, err := schedulerv1pb.NewSchedulerClient(conn).WatchHosts(ctx, &schedulerv1pb.WatchHostsRequest{})
	if err != nil {
		return err
	}
	for {
		res, err := stream.Recv()
		if status.Code(err) == codes.Unimplemented {
			c.setMembers(given)
			<-ctx.Done()
			return nil
		}
		if err != nil {
			return err
		}
		var addrs []string
		for _, h := range res.GetHosts() {
			addrs = append(addrs, h.GetAddress())
		}
		c.log.Debug("scheduler hosts", "addresses", addrs)
		c.setMembers(addrs)
	}
}

// setMembers connects to the members not yet connected and drops the ones
// gone.
func (c *Client) setMembers(addrs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return
	}
	keep := map[string]bool{}
	for _, addr := range addrs {
		keep[addr] = true
		if c.members[addr] != nil {
			continue
		}
		conn, err := dial(addr)
		if err != nil {
			c.log.Warn("scheduler: cannot connect to a member", "address", addr, "error", err)
			continue
		}
		ctx, cancel := context.WithCancel(c.ctx)
		m := &member{addr: addr, conn: conn, client: schedulerv1pb.NewSchedulerClient(conn), cancel: cancel}
		c.members[addr] = m
		if len(c.opts.ActorTypes) > 0 {
			c.wg.Go(func() { c.watchJobs(ctx, m) })
		}
	}
	for addr, m := range c.members {
		if !keep[addr] {
			m.cancel()
			m.conn.Close()
			delete(c.members, addr)
		}
	}
	c.order = c.order[:0]
	for _, m := range c.members {
		c.order = append(c.order, m)
	}
	if len(c.order) > 0 {
		c.markReady()
	}
}

func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// As daprd: keep the long-lived streams alive through idle NATs
		// and notice a dead member.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
	)
}

func backoff(attempt int) time.Duration {
	d := min(time.Duration(attempt)*250*time.Millisecond, 3*time.Second)
	return d/2 + rand.N(d/2+1)
}

// watchJobs keeps a WatchJobs stream open to one member until ctx ends,
// reconnecting with a backoff.
func (c *Client) watchJobs(ctx context.Context, m *member) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff(attempt)):
			}
		}
		start := time.Now()
		err := c.runJobStream(ctx, m)
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("scheduler: the job stream ended; reconnecting", "address", m.addr, "error", err)
		if time.Since(start) > 10*time.Second {
			attempt = 0
		}
	}
}

// runJobStream opens a WatchJobs stream announcing this sidecar's actor
// types, runs each trigger in its own goroutine and acknowledges it with
// its outcome, one Send at a time.
func (c *Client) runJobStream(ctx context.Context, m *member) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := m.client.WatchJobs(ctx)
	if err != nil {
		return err
	}
	err = stream.Send(&schedulerv1pb.WatchJobsRequest{WatchJobRequestType: &schedulerv1pb.WatchJobsRequest_Initial{
		Initial: &schedulerv1pb.WatchJobsRequestInitial{
			AppId: c.opts.AppID, Namespace: c.opts.Namespace, ActorTypes: c.opts.ActorTypes,
			AcceptJobTypes: []schedulerv1pb.JobTargetType{schedulerv1pb.JobTargetType_JOB_TARGET_TYPE_ACTOR_REMINDER},
		},
	}})
	if err != nil {
		return err
	}
	results := make(chan *schedulerv1pb.WatchJobsRequest)
	sendErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case r := <-results:
				if err := stream.Send(r); err != nil {
					sendErr <- err
					cancel()
					return
				}
			}
		}
	}()
	var handlers sync.WaitGroup
	defer func() {
		// The stream is over: its triggers in flight are given up (the
		// scheduler sends them again), their acks with nowhere to go.
		cancel()
		handlers.Wait()
	}()
	for {
		job, err := stream.Recv()
		if err != nil {
			select {
			case e := <-sendErr:
				return e
			default:
			}
			return err
		}
		handlers.Go(func() {
			result := schedulerv1pb.WatchJobsRequestResultStatus_SUCCESS
			if err := c.handle(ctx, job); err != nil {
				result = schedulerv1pb.WatchJobsRequestResultStatus_FAILED
				if ctx.Err() == nil {
					c.log.Warn("actor reminder failed", "name", job.GetName(), "error", err)
				}
			}
			select {
			case results <- &schedulerv1pb.WatchJobsRequest{WatchJobRequestType: &schedulerv1pb.WatchJobsRequest_Result{
				Result: &schedulerv1pb.WatchJobsRequestResult{Id: job.GetId(), Status: result},
			}}:
			case <-ctx.Done():
				// The stream is gone: the scheduler sends the trigger again
				// on a stream of this or another sidecar.
			}
		})
	}
}

func (c *Client) handle(ctx context.Context, job *schedulerv1pb.WatchJobsResponse) error {
	actor := job.GetMetadata().GetTarget().GetActor()
	if actor == nil {
		return fmt.Errorf("job %q is not an actor reminder (wapr serves no jobs API)", job.GetName())
	}
	if c.opts.OnTrigger == nil {
		return errors.New("no handler")
	}
	data, err := dataJSON(job.GetData())
	if err != nil {
		return err
	}
	return c.opts.OnTrigger(ctx, &Trigger{Name: job.GetName(), ActorType: actor.GetType(), ActorID: actor.GetId(), Data: data})
}

// ConnectedAddresses are the scheduler members the client is connected to,
// sorted, for the metadata API.
func (c *Client) ConnectedAddresses() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.order))
	for _, m := range c.order {
		out = append(out, m.addr)
	}
	slices.Sort(out)
	return out
}

// pick waits until the members are known and returns one, in turn.
func (c *Client) pick(ctx context.Context) (schedulerv1pb.SchedulerClient, error) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: not connected yet: %w", ErrNotStarted, ctx.Err())
	}
	if c.failErr != nil {
		return nil, c.failErr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.order) == 0 {
		return nil, fmt.Errorf("%w: no scheduler member is connected", ErrNotStarted)
	}
	return c.order[c.next.Add(1)%uint64(len(c.order))].client, nil
}

func (c *Client) metadata(actorType, actorID string) *schedulerv1pb.JobMetadata {
	return &schedulerv1pb.JobMetadata{
		AppId: c.opts.AppID, Namespace: c.opts.Namespace,
		Target: &schedulerv1pb.JobTargetMetadata{Type: &schedulerv1pb.JobTargetMetadata_Actor{
			Actor: &schedulerv1pb.TargetActorReminder{Type: actorType, Id: actorID},
		}},
	}
}

// CreateReminder schedules a reminder as daprd does: the period becomes an
// "@every" schedule and its repetitions the job's repeats; dueTime and ttl
// are passed as given (the scheduler reads Dapr's formats); the data is
// kept as a protobuf BytesValue of its JSON. A period in years, months or
// days is refused, as daprd refuses it.
func (c *Client) CreateReminder(ctx context.Context, r *Reminder) error {
	job := &schedulerv1pb.Job{FailurePolicy: r.FailurePolicy.proto()}
	if r.DueTime != "" {
		job.DueTime = &r.DueTime
	}
	if r.TTL != "" {
		job.Ttl = &r.TTL
	}
	if r.Period != "" {
		job.Schedule = &r.Period
	}
	if r.Repeats > 0 {
		job.Repeats = &r.Repeats
	}
	if len(r.Data) > 0 {
		a, err := anypb.New(wrapperspb.Bytes(r.Data))
		if err != nil {
			return err
		}
		job.Data = a
	}
	cl, err := c.pick(ctx)
	if err != nil {
		return err
	}
	_, err = cl.ScheduleJob(ctx, &schedulerv1pb.ScheduleJobRequest{
		Name: r.Name, Job: job, Metadata: c.metadata(r.ActorType, r.ActorID), Overwrite: r.Overwrite,
	})
	return callError(err)
}

// GetReminder returns a reminder, or nil when there is none.
func (c *Client) GetReminder(ctx context.Context, actorType, actorID, name string) (*Reminder, error) {
	cl, err := c.pick(ctx)
	if err != nil {
		return nil, err
	}
	res, err := cl.GetJob(ctx, &schedulerv1pb.GetJobRequest{Name: name, Metadata: c.metadata(actorType, actorID)})
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, callError(err)
	}
	job := res.GetJob()
	data, err := dataJSON(job.GetData())
	if err != nil {
		return nil, err
	}
	return &Reminder{
		ActorType: actorType, ActorID: actorID, Name: name,
		DueTime: job.GetDueTime(), Period: job.GetSchedule(), TTL: job.GetTtl(), Repeats: job.GetRepeats(),
		Data: data,
	}, nil
}

// DeleteReminder deletes a reminder; a missing one is no error.
func (c *Client) DeleteReminder(ctx context.Context, actorType, actorID, name string) error {
	cl, err := c.pick(ctx)
	if err != nil {
		return err
	}
	_, err = cl.DeleteJob(ctx, &schedulerv1pb.DeleteJobRequest{Name: name, Metadata: c.metadata(actorType, actorID)})
	return callError(err)
}

// ListReminders returns the reminders of an actor type, of one actor when
// actorID is not nil, as the scheduler lists them (ListJobs).
func (c *Client) ListReminders(ctx context.Context, actorType string, actorID *string) ([]*Reminder, error) {
	cl, err := c.pick(ctx)
	if err != nil {
		return nil, err
	}
	var id string
	if actorID != nil {
		id = *actorID
	}
	res, err := cl.ListJobs(ctx, &schedulerv1pb.ListJobsRequest{Metadata: c.metadata(actorType, id)})
	if err != nil {
		return nil, callError(err)
	}
	out := make([]*Reminder, 0, len(res.GetJobs()))
	for _, named := range res.GetJobs() {
		actor := named.GetMetadata().GetTarget().GetActor()
		if actor == nil {
			continue // not a reminder: the scheduler lists none under an actor's key
		}
		job := named.GetJob()
		data, err := dataJSON(job.GetData())
		if err != nil {
			return nil, err
		}
		out = append(out, &Reminder{
			ActorType: actor.GetType(), ActorID: actor.GetId(), Name: named.GetName(),
			DueTime: job.GetDueTime(), Period: job.GetSchedule(), TTL: job.GetTtl(), Repeats: job.GetRepeats(),
			Data: data,
		})
	}
	return out, nil
}

// DeleteReminders deletes the reminders of an actor type, of one actor when
// actorID is not nil (DeleteByMetadata, as daprd's
// UnregisterActorRemindersByType).
func (c *Client) DeleteReminders(ctx context.Context, actorType string, actorID *string) error {
	cl, err := c.pick(ctx)
	if err != nil {
		return err
	}
	// Without an id, every id: the empty one is a prefix of all.
	id, prefix := "", true
	if actorID != nil {
		id, prefix = *actorID, false
	}
	_, err = cl.DeleteByMetadata(ctx, &schedulerv1pb.DeleteByMetadataRequest{Metadata: c.metadata(actorType, id), IdPrefixMatch: &prefix})
	return callError(err)
}

// dataJSON is a job's data as daprd gives it to the app: a BytesValue's
// bytes as they are (the JSON the reminder was created with), any other
// message in protojson.
func dataJSON(a *anypb.Any) (json.RawMessage, error) {
	if a == nil {
		return nil, nil
	}
	msg, err := a.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("reminder data: %w", err)
	}
	if b, ok := msg.(*wrapperspb.BytesValue); ok {
		return b.GetValue(), nil
	}
	return protojson.Marshal(msg)
}
