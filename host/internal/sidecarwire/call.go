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
// ctx ends when the caller gives the call up; InvokeLocal then stops an
// actor call waiting for its actor's turn, but an app call once begun runs
// on (see api.API.InvokeLocal).
func invokeLocal(ctx context.Context, a *api.API, log *slog.Logger, req *api.InvokeRequest) *response {
	res, err := a.InvokeLocal(ctx, req.AppID, req)
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
