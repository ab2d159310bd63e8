// Command go-sdk is a Dapr app written with the official Go SDK, unchanged
// from what it would be against daprd: it serves Dapr's AppCallback over
// gRPC (the SDK's service/grpc), subscribes to a topic, and uses the client
// to save state and publish through wapr's gRPC API.
//
// Run wapr for it, then the app:
//
//	go run ./cmd/wapr run --app-id orders --app-port 50051 --app-protocol grpc
//	go run ./examples/go-sdk
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/dapr/go-sdk/service/common"
	daprd "github.com/dapr/go-sdk/service/grpc"
)

func main() {
	appAddr := envOr("APP_ADDRESS", "127.0.0.1:50051")
	sidecar := envOr("DAPR_GRPC_ENDPOINT", "127.0.0.1:"+envOr("DAPR_GRPC_PORT", "50001"))
	ln, err := net.Listen("tcp", appAddr)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, ln, sidecar, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// run serves the app on ln, then saves an order, publishes it, waits until
// the subscription delivers it back, and reads the state.
func run(ctx context.Context, ln net.Listener, sidecar string, out interface{ Write([]byte) (int, error) }) error {
	received := make(chan string, 1)
	svc := daprd.NewServiceWithListener(ln)
	sub := &common.Subscription{PubsubName: "pubsub", Topic: "orders", Route: "/orders"}
	err := svc.AddTopicEventHandler(sub, func(ctx context.Context, e *common.TopicEvent) (retry bool, err error) {
		select {
		case received <- string(e.RawData):
		default:
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	go svc.Start()
	defer svc.GracefulStop()

	client, err := dapr.NewClientWithAddressContext(ctx, sidecar)
	if err != nil {
		return fmt.Errorf("connecting to the sidecar at %s: %w", sidecar, err)
	}
	defer client.Close()

	order := []byte(`{"id":"order-1","qty":3}`)
	if err := client.SaveState(ctx, "statestore", "order-1", order, nil); err != nil {
		return err
	}
	// The sidecar asks the app for its subscriptions once the app is up;
	// publish until the subscription delivers.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for delivered := false; !delivered; {
		if err := client.PublishEvent(ctx, "pubsub", "orders", order, dapr.PublishEventWithContentType("application/json")); err != nil {
			return err
		}
		select {
		case data := <-received:
			fmt.Fprintf(out, "received from topic orders: %s\n", data)
			delivered = true
		case <-tick.C:
		case <-ctx.Done():
			return errors.New("the published order never arrived")
		}
	}
	item, err := client.GetState(ctx, "statestore", "order-1", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "state order-1: %s\n", item.Value)
	return nil
}
