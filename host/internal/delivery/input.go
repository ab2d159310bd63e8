package delivery

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/wapr-dev/wapr/host/component/bindings"
	"github.com/wapr-dev/wapr/host/internal/api"
	"github.com/wapr-dev/wapr/host/internal/tracing"
)

// StartInputs starts reading every input binding the app wants: unless a
// binding's direction says so, the app is first asked with OPTIONS on the
// binding's route (2xx or 405: it wants the events; anything else: the
// binding is not read, as in daprd). Each event is POSTed to the route; a
// 2xx answer acknowledges it, anything else is an error the binding must not
// acknowledge to its source. It returns the names of the bindings being read
// and the problems with the others. Call it after Start.
func (m *Manager) StartInputs(probeCtx context.Context) ([]string, []error) {
	m.mu.Lock()
	ctx, started := m.ctx, m.started
	m.mu.Unlock()
	if !started {
		return nil, []error{fmt.Errorf("delivery: StartInputs before Start")}
	}
	inputs := m.api.Snapshot().Inputs
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	var reading []string
	var errs []error
	for _, name := range names {
		in := inputs[name]
		if !in.SkipProbe {
			res, err := m.app.Call(probeCtx, &api.AppRequest{Call: api.AppCallBindingProbe, Binding: name, Method: "OPTIONS", Path: in.Route})
			if err != nil {
				errs = append(errs, fmt.Errorf("input binding %s: asking the app about %s: %w", name, in.Route, err))
				continue
			}
			if res.Status/100 != 2 && res.Status != 405 {
				m.log.Info("the app does not take events from this input binding", "binding", name, "route", in.Route, "status", res.Status)
				continue
			}
		}
		route := in.Route
		if !strings.HasPrefix(route, "/") {
			route = "/" + route
		}
		h := func(ctx context.Context, ev *bindings.Event) ([]byte, error) {
			return m.deliverEvent(ctx, name, route, ev)
		}
		if err := in.Binding.Read(ctx, h); err != nil {
			errs = append(errs, fmt.Errorf("input binding %s: %w", name, err))
			continue
		}
		reading = append(reading, name)
	}
	return reading, errs
}

// deliverEvent POSTs one input-binding event to the app.
func (m *Manager) deliverEvent(ctx context.Context, name, route string, ev *bindings.Event) ([]byte, error) {
	ctx, end, err := m.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("delivering an event of input binding %s: %w", name, err)
	}
	defer end()
	headers := make(map[string]string, len(ev.Metadata))
	for k, v := range ev.Metadata {
		if k != "" && isHeaderSafe(k) && isHeaderSafe(v) {
			headers[k] = v
		}
	}
	var span tracing.Span
	if tracer := m.api.Tracer(); tracer != nil {
		// The event's span, named as daprd names it, continues the trace
		// the event's metadata carries, if any; the app continues from it.
		span = tracer.Start("bindings/"+name, tracing.Consumer, tracing.Parse(ev.Metadata["traceparent"], ev.Metadata["tracestate"]))
		tracing.SetAttributes(span, tracing.String("db.system", "bindings"), tracing.String("db.name", name))
		tp, ts := tracing.Headers(span)
		headers["traceparent"] = tp
		if ts != "" {
			headers["tracestate"] = ts
		} else {
			delete(headers, "tracestate")
		}
	}
	res, err := m.app.Call(ctx, &api.AppRequest{
		Call: api.AppCallBindingEvent, Binding: name, Method: "POST", Path: route, ContentType: "application/json", Headers: headers, Body: ev.Data,
	})
	if err != nil {
		tracing.End(span, err)
		return nil, fmt.Errorf("delivering an event of input binding %s: %w", name, err)
	}
	tracing.EndHTTP(span, res.Status)
	if res.Status/100 != 2 {
		return nil, fmt.Errorf("the app answered %d to an event of input binding %s", res.Status, name)
	}
	return res.Body, nil
}
