package api

import (
	"context"

	"github.com/wapr-dev/wapr/host/component/bindings"
)

// InvokeBindingRequest calls an output binding.
type InvokeBindingRequest struct {
	Name      string
	Operation string
	Data      []byte
	Metadata  map[string]string
}

// InvokeBindingResponse is what the binding returned. A nil response means no
// content.
type InvokeBindingResponse struct {
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// InvokeBinding calls an output binding. On a component error the returned
// *Error still carries the response metadata, which Dapr returns as headers.
func (a *API) InvokeBinding(ctx context.Context, in *InvokeBindingRequest) (*InvokeBindingResponse, error) {
	var b *OutputBinding
	for {
		var ok bool
		b, ok = a.snapshot.Load().Outputs[in.Name]
		if !ok {
			return nil, errorf(CodeBindingInvoke, nil, "error invoking output binding %s: couldn't find output binding %s", in.Name, in.Name)
		}
		if b.Gate.Enter() {
			break
		}
	}
	defer b.Gate.Leave()
	if in.Operation == "" {
		return nil, errorf(CodeBindingInvoke, nil, "error invoking output binding %s: operation field is missing from request", in.Name)
	}
	span := a.componentSpan(ctx, "bindings", "Invoke", &b.Info)
	md := in.Metadata
	if c := a.carrier(ctx, span); c != nil {
		// The binding continues the trace, as daprd puts the trace
		// context in the metadata it hands a binding.
		md = withTraceContext(md, c)
	}
	res, err := b.Binding.Invoke(ctx, &bindings.InvokeRequest{
		Operation: bindings.Operation(in.Operation), Data: in.Data, Metadata: md,
	})
	endComponent(span, err)
	if err != nil {
		e := errorf(CodeBindingInvoke, err, "error invoking output binding %s: %v", in.Name, err)
		if res != nil {
			e.Metadata = res.Metadata
		}
		return nil, e
	}
	if res == nil {
		return nil, nil
	}
	return &InvokeBindingResponse{Data: res.Data, ContentType: res.ContentType, Metadata: res.Metadata}, nil
}
