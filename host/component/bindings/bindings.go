// Package bindings is the contract of output and input bindings.
//
// An output binding performs an operation on an external system when the app
// calls POST /v1.0/bindings/{name}. An input binding reads events from an
// external system and hands each to the host, which delivers it to the app.
// One component may be both.
package bindings

import (
	"context"

	"github.com/wapr-dev/wapr/host/component"
)

// Operation names an output-binding operation.
type Operation string

// Dapr's standard operations; bindings may add their own (such as HTTP verbs).
const (
	OperationCreate Operation = "create"
	OperationGet    Operation = "get"
	OperationDelete Operation = "delete"
	OperationList   Operation = "list"
)

// Output is an output binding. Implementations must be safe for concurrent use.
type Output interface {
	component.Lifecycle
	// Operations lists what Invoke accepts; any other operation is refused
	// with an error wrapping component.ErrNotSupported.
	Operations() []Operation
	Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error)
}

// InvokeRequest is one call of an output binding.
type InvokeRequest struct {
	Operation Operation
	Data      []byte
	Metadata  map[string]string
}

// InvokeResponse is what the binding returns. A nil *InvokeResponse means no
// content (204); a response with nil Data means 200 with an empty body.
// Metadata entries are returned to the app as metadata.* headers.
type InvokeResponse struct {
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// Input is an input binding.
type Input interface {
	component.Lifecycle
	// Read starts delivering events to h and returns once reading has begun.
	// It stops when ctx is done or the component is closed. An error from h
	// means the app did not accept the event: the binding must not
	// acknowledge it to its source.
	Read(ctx context.Context, h Handler) error
}

// Event is one event read from the source.
type Event struct {
	Data     []byte
	Metadata map[string]string
}

// Handler delivers one event to the app and returns the app's reply body.
type Handler func(ctx context.Context, ev *Event) ([]byte, error)
