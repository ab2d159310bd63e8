// Package state is the contract of a state store.
//
// Store is the core every store implements. Bulk operations, transactions and
// TTL are optional: a store offers them by implementing BulkStore or
// Transactional and by declaring the matching Feature. The host falls back to
// single-key calls for stores without BulkStore.
//
// Keys reaching a store are already prefixed by the host (Dapr's keyPrefix);
// stores never see or strip prefixes.
package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wapr-dev/wapr/host/component"
)

// Features a state store may declare (Dapr's names).
const (
	FeatureETag          component.Feature = "ETAG"
	FeatureTransactional component.Feature = "TRANSACTIONAL"
	FeatureTTL           component.Feature = "TTL"
	FeatureQuery         component.Feature = "QUERY_API"
)

// Concurrency and consistency options (Dapr's values).
const (
	FirstWrite = "first-write"
	LastWrite  = "last-write"
	Strong     = "strong"
	Eventual   = "eventual"
)

// Store is the core of a state store. Implementations must be safe for
// concurrent use.
type Store interface {
	component.Lifecycle
	Features() []component.Feature
	// Get returns the value of req.Key, or an error wrapping
	// component.ErrNotFound when there is none.
	Get(ctx context.Context, req *GetRequest) (*GetResponse, error)
	// Set writes a value. With an ETag, or with first-write concurrency, a
	// conflict returns an *ETagError.
	Set(ctx context.Context, req *SetRequest) error
	// Delete removes a key; deleting a missing key without an ETag is not an
	// error.
	Delete(ctx context.Context, req *DeleteRequest) error
}

// BulkStore is implemented by stores with native multi-key operations.
type BulkStore interface {
	// BulkGet returns one item per requested key, in request order. A missing
	// key yields an item with nil Data and no error.
	BulkGet(ctx context.Context, reqs []GetRequest) ([]BulkGetItem, error)
	// BulkSet writes every item; it is not atomic. Per-key failures are joined
	// (errors.Join) so errors.As finds each *ETagError.
	BulkSet(ctx context.Context, reqs []SetRequest) error
	BulkDelete(ctx context.Context, reqs []DeleteRequest) error
}

// Transactional is implemented by stores that apply a list of operations
// atomically: all of them or none.
type Transactional interface {
	Multi(ctx context.Context, req *TransactionRequest) error
}

// Options carry Dapr's concurrency and consistency hints.
type Options struct {
	Concurrency string // FirstWrite or LastWrite ("" = last-write)
	Consistency string // Strong or Eventual ("" = eventual)
}

// GetRequest asks for one key.
type GetRequest struct {
	Key      string
	Metadata map[string]string
	Options  Options
}

// GetResponse is a stored value. Data is owned by the caller.
type GetResponse struct {
	Data        []byte
	ETag        string // empty when the store has no ETags
	ContentType string
	// Metadata is returned to the app as metadata.* headers (ttlExpireTime).
	Metadata map[string]string
}

// BulkGetItem is one result of BulkGet.
type BulkGetItem struct {
	Key      string
	Data     []byte // nil when the key is missing
	ETag     string
	Metadata map[string]string
	Err      error
}

// SetRequest writes one key. A nil ETag means none was given; a non-nil empty
// one was given empty (and, with first-write, means "only if absent").
type SetRequest struct {
	Key         string
	Value       []byte
	ETag        *string
	ContentType string
	Metadata    map[string]string
	Options     Options
}

// DeleteRequest removes one key, optionally guarded by an ETag.
type DeleteRequest struct {
	Key      string
	ETag     *string
	Metadata map[string]string
	Options  Options
}

// Operation is one step of a transaction: *SetRequest (upsert) or
// *DeleteRequest.
type Operation interface{ operationKey() string }

func (r *SetRequest) operationKey() string    { return r.Key }
func (r *DeleteRequest) operationKey() string { return r.Key }

// TransactionRequest lists operations applied in order, atomically.
type TransactionRequest struct {
	Operations []Operation
	Metadata   map[string]string
}

// ETagErrorKind tells a mismatch (409) from a malformed ETag (400).
type ETagErrorKind int

const (
	ETagMismatch ETagErrorKind = iota + 1
	ETagInvalid
)

// ETagError reports an optimistic-concurrency failure on Key.
type ETagError struct {
	Kind ETagErrorKind
	Key  string
	Err  error // optional cause
}

func (e *ETagError) Error() string {
	var s string
	switch e.Kind {
	case ETagInvalid:
		s = "invalid etag value"
	default:
		s = "possible etag mismatch. error from state store"
	}
	if e.Key != "" {
		s += " (key " + strconv.Quote(e.Key) + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ETagError) Unwrap() error { return e.Err }

// NewETagMismatch returns an *ETagError of kind ETagMismatch for key.
func NewETagMismatch(key string) error { return &ETagError{Kind: ETagMismatch, Key: key} }

// NewETagInvalid returns an *ETagError of kind ETagInvalid for key.
func NewETagInvalid(key string) error { return &ETagError{Kind: ETagInvalid, Key: key} }

// IsETagMismatch reports whether err carries an ETag mismatch.
func IsETagMismatch(err error) bool {
	var e *ETagError
	return errors.As(err, &e) && e.Kind == ETagMismatch
}

// MetadataTTL is the request metadata key for a per-item time to live.
const MetadataTTL = "ttlInSeconds"

// MetadataTTLExpireTime is the response metadata key carrying the expiry
// (RFC 3339) of a value written with a TTL.
const MetadataTTLExpireTime = "ttlExpireTime"

// ParseTTL reads ttlInSeconds from request metadata. ok is false when no TTL
// was asked for or when it is -1 (never expire, which also clears an existing
// TTL). Any other non-positive or non-numeric value is an error wrapping
// component.ErrInvalidArgument.
func ParseTTL(md map[string]string) (ttl time.Duration, ok bool, err error) {
	v, present := md[MetadataTTL]
	if !present {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %s %q is not an integer", component.ErrInvalidArgument, MetadataTTL, v)
	}
	if n == -1 {
		return 0, false, nil
	}
	if n <= 0 {
		return 0, false, fmt.Errorf("%w: %s must be positive or -1, got %d", component.ErrInvalidArgument, MetadataTTL, n)
	}
	return time.Duration(n) * time.Second, true, nil
}
