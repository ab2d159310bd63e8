package scheduler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dapr/dapr/pkg/healthz"
	"github.com/dapr/dapr/pkg/modes"
	schedulerv1pb "github.com/dapr/dapr/pkg/proto/scheduler/v1"
	daprscheduler "github.com/dapr/dapr/pkg/scheduler/server"
	"github.com/dapr/dapr/pkg/security"

	"github.com/wapr-dev/wapr/host/internal/daprlog"
)

// ServerOptions configure an embedded scheduler server.
type ServerOptions struct {
	// Host is the loopback address it listens on ("127.0.0.1").
	Host string
	// DataDir holds its etcd database; it is created if missing. Only one
	// server at a time may use a folder: on Unix a second one fails at
	// once (lockDir), elsewhere it waits for etcd's lock.
	DataDir string
}

// Server is Dapr's scheduler server (github.com/dapr/dapr/pkg/scheduler/server)
// running in this process: one member, its etcd embedded, no mTLS (it
// listens on loopback only), jobs kept on disk in DataDir so that they
// outlive the process.
type Server struct {
	addr   string
	cancel context.CancelFunc
	done   chan struct{} // closed once the server has stopped
	lock   *os.File      // held on DataDir until Close (nil outside Unix)
	unlock sync.Once
}

// StartServer runs a scheduler server on opts.Host at free ports and
// returns once it serves its hosts (its cron leads), or with an error. Close
// stops it. Cancelling ctx stops a start in progress; a started server runs
// until Close.
func StartServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("scheduler server: no data folder")
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("scheduler server: %w", err)
	}
	lock, err := lockDir(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("scheduler server: %w", err)
	}
	daprlog.Quiet()
	var lastErr error
	// Dapr's server and its etcd listen by themselves, at ports they are
	// given: a free port found here may be taken before they listen, so a
	// failed start is tried again on others.
	for range 3 {
		s, err := startServer(ctx, opts)
		if err == nil {
			s.lock = lock
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lock != nil {
		lock.Close()
	}
	return nil, lastErr
}

func startServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	var ports [3]int
	for i := range ports {
		p, err := freePort(opts.Host)
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	port, clientPort, peerPort := ports[0], ports[1], ports[2]
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{addr: net.JoinHostPort(opts.Host, strconv.Itoa(port)), cancel: cancel, done: make(chan struct{})}
	hz := healthz.New()
	sec, err := security.New(runCtx, security.Options{
		ControlPlaneTrustDomain: "localhost",
		ControlPlaneNamespace:   "default",
		AppID:                   "dapr-scheduler",
		MTLSEnabled:             false,
		Mode:                    modes.StandaloneMode,
		Healthz:                 hz,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("scheduler security: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { sec.Run(runCtx) })
	handler, err := sec.Handler(runCtx)
	if err != nil {
		cancel()
		wg.Wait()
		return nil, fmt.Errorf("scheduler security: %w", err)
	}
	const name = "wapr-scheduler"
	srv, err := daprscheduler.New(runCtx, daprscheduler.Options{
		Healthz:       hz,
		Security:      handler,
		ListenAddress: opts.Host,
		Port:          port,
		Mode:          modes.StandaloneMode,
		// Dapr's scheduler spreads the job space over this many
		// goroutines; its default (2048) is sized for a control plane
		// serving a cluster, not one sidecar.
		Workers:                 64,
		EtcdEmbed:               true,
		EtcdDataDir:             opts.DataDir,
		EtcdName:                name,
		EtcdInitialCluster:      []string{name + "=http://" + net.JoinHostPort(opts.Host, strconv.Itoa(peerPort))},
		EtcdClientPort:          uint64(clientPort),
		EtcdClientListenAddress: opts.Host,
		// Dapr's defaults (cmd/scheduler/options), but for the space
		// quota: etcd's own default (2 GiB) rather than Dapr's unlimited.
		EtcdCompactionMode:       "revision",
		EtcdCompactionRetention:  "1000000",
		EtcdSnapshotCount:        100000,
		EtcdMaxSnapshots:         10,
		EtcdMaxWALs:              10,
		EtcdBackendBatchLimit:    10000,
		EtcdBackendBatchInterval: "100ms",
		EtcdMaxTxnOps:            10000,
		EtcdDefragThresholdMB:    100,
		EtcdMetrics:              "basic",
	})
	if err != nil {
		cancel()
		wg.Wait()
		return nil, fmt.Errorf("scheduler server: %w", err)
	}
	runErr := make(chan error, 1)
	wg.Go(func() { runErr <- srv.Run(runCtx) })
	go func() {
		wg.Wait()
		close(s.done)
	}()
	// Ready once its cron leads: WatchHosts answers only then.
	startCtx, startCancel := context.WithTimeout(ctx, 60*time.Second)
	defer startCancel()
	for {
		if err := watchHostsOnce(startCtx, s.addr); err == nil {
			return s, nil
		}
		select {
		case err := <-runErr:
			cancel()
			waitStopped(s.done)
			if err == nil {
				err = errors.New("stopped")
			}
			return nil, fmt.Errorf("scheduler server: %w", err)
		case <-startCtx.Done():
			cancel()
			waitStopped(s.done)
			return nil, fmt.Errorf("scheduler server: not serving: %w", startCtx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitStopped waits a while for a server that failed to start to stop: one
// stuck inside etcd (waiting for a lock it will never get) is left behind
// rather than hang its caller.
func waitStopped(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// watchHostsOnce asks the server at addr for its hosts.
func watchHostsOnce(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	stream, err := schedulerv1pb.NewSchedulerClient(conn).WatchHosts(ctx, &schedulerv1pb.WatchHostsRequest{})
	if err != nil {
		return err
	}
	res, err := stream.Recv()
	if err != nil {
		return err
	}
	if len(res.GetHosts()) == 0 {
		return errors.New("no hosts yet")
	}
	return nil
}

// Addr is where the server listens, "host:port".
func (s *Server) Addr() string { return s.addr }

// Close stops the server and waits until it has released its data folder,
// at most until ctx is done. Close twice is safe.
func (s *Server) Close(ctx context.Context) error {
	s.cancel()
	select {
	case <-s.done:
		s.unlock.Do(func() {
			if s.lock != nil {
				s.lock.Close()
			}
		})
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
