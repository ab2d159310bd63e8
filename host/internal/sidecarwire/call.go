package sidecarwire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// invokeLocal gives req to this sidecar's app, for either wire's server. An
// error of InvokeLocal is an answer too: it crosses the wire as a kindError
// message, not as a failure of the wire, so that the caller tells it apart
// from a broken channel.
//
// The app call does not end when the caller gives up, as on the HTTP wire
// (whose server passes no context): the app channel bounds it with its own
// timeout, and a context that can end would cost a goroutine per call in
// httpapi's app channel.
func invokeLocal(ctx context.Context, a *api.API, log *slog.Logger, req *api.InvokeRequest) *response {
	res, err := a.InvokeLocal(context.WithoutCancel(ctx), req.AppID, req)
	if err != nil {
		e := api.AsError(err)
		log.Warn("invocation failed", "callee", req.AppID, "caller", req.CallerAppID, "error", e.Message)
		msg := e.Message
		if e.Err != nil {
			msg = e.Err.Error() // without "failed to invoke", which the caller adds
		}
		return &response{err: &remoteError{code: e.Code, message: msg, misrouted: errors.Is(err, api.ErrMisrouted)}}
	}
	return &response{res: res}
}

// result is what either wire's Call returns for the called sidecar's answer
// r: the app's response, api.ErrMisrouted, or the called sidecar's error as
// an *api.Error with its Code and the message of its cause (the caller's
// Invoke says "failed to invoke" itself).
func (r *response) result(addr string) (*api.InvokeResponse, error) {
	if e := r.err; e != nil {
		if e.misrouted {
			return nil, fmt.Errorf("calling the sidecar at %s: %w", addr, api.ErrMisrouted)
		}
		return nil, fmt.Errorf("calling the sidecar at %s: %w", addr, &api.Error{Code: e.code, Message: e.message})
	}
	return r.res, nil
}
