package httpapi

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/wapr-dev/wapr/host/internal/api"
)

// lockBody is the body of lock and unlock requests. daprd decodes it with
// protojson, which takes each field by its JSON name or its proto name and
// an int32 as a number or a string, and ignores unknown fields.
type lockBody struct {
	ResourceID      string
	LockOwner       string
	ExpiryInSeconds int32
}

func decodeLockBody(body []byte) (lockBody, error) {
	var out lockBody
	if len(body) == 0 {
		return out, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return out, err
	}
	str := func(dst *string, names ...string) error {
		for _, n := range names {
			if raw, ok := fields[n]; ok && string(raw) != "null" {
				if err := json.Unmarshal(raw, dst); err != nil {
					return fmt.Errorf("field %s: want a string", n)
				}
			}
		}
		return nil
	}
	if err := str(&out.ResourceID, "resourceId", "resource_id"); err != nil {
		return out, err
	}
	if err := str(&out.LockOwner, "lockOwner", "lock_owner"); err != nil {
		return out, err
	}
	for _, n := range []string{"expiryInSeconds", "expiry_in_seconds"} {
		raw, ok := fields[n]
		if !ok || string(raw) == "null" {
			continue
		}
		text := string(raw)
		var quoted string
		if json.Unmarshal(raw, &quoted) == nil {
			text = quoted
		}
		v, err := strconv.ParseInt(text, 10, 32)
		if err != nil {
			return out, fmt.Errorf("field %s: want a 32-bit integer, got %s", n, raw)
		}
		out.ExpiryInSeconds = int32(v)
	}
	return out, nil
}

// routeLock serves POST /v1.0-alpha1/lock/{store} and
// POST /v1.0-alpha1/unlock/{store}.
func (s *Server) routeLock(ctx *fasthttp.RequestCtx, block string, rest []string) bool {
	if len(rest) != 1 || !ctx.IsPost() {
		return false
	}
	body, err := decodeLockBody(ctx.PostBody())
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "ERR_MALFORMED_REQUEST", "failed deserializing HTTP body: "+err.Error())
		return true
	}
	if block == "lock" {
		ok, err := s.api.TryLock(requestContext(ctx), &api.TryLockRequest{
			Store: rest[0], ResourceID: body.ResourceID, LockOwner: body.LockOwner, ExpiryInSeconds: body.ExpiryInSeconds,
		})
		if err != nil {
			s.writeAPIError(ctx, err)
			return true
		}
		writeJSON(ctx, fasthttp.StatusOK, struct {
			Success bool `json:"success"`
		}{ok})
		return true
	}
	status, err := s.api.Unlock(requestContext(ctx), &api.UnlockRequest{
		Store: rest[0], ResourceID: body.ResourceID, LockOwner: body.LockOwner,
	})
	if err != nil {
		s.writeAPIError(ctx, err)
		return true
	}
	writeJSON(ctx, fasthttp.StatusOK, struct {
		Status int32 `json:"status"`
	}{int32(status)})
	return true
}
