package guest

import (
	"context"

	"github.com/wapr-dev/wapr/abi"
)

// Fallbacks for stores without BulkStateStore: one Get, Set or Delete per
// item. Each Get's result is encoded before the next Get runs, so a store
// may return data aliasing a buffer it reuses.

func (d *dispatcher) bulkGetEach(ctx context.Context, req *abi.StateBulkGetRequest) error {
	for i := range req.Requests {
		r := &req.Requests[i]
		item := abi.StateBulkGetItem{Key: r.Key}
		resp, err := d.store.Get(ctx, r)
		switch status := StatusOf(err); {
		case err == nil && resp != nil:
			item.Found, item.Data, item.ETag, item.Metadata, item.ContentType = true, resp.Data, resp.ETag, resp.Metadata, resp.ContentType
		case err == nil, status == abi.StatusNotFound:
		case status == abi.StatusDeadline:
			return err // no time left for the other keys
		default:
			item.Error = err.Error()
		}
		mark := d.enc.Begin(1)
		item.Encode(&d.enc)
		d.enc.End(mark)
	}
	return nil
}

func (d *dispatcher) bulkSetEach(ctx context.Context, req *abi.StateBulkSetRequest) error {
	var res abi.BulkResult
	for i := range req.Requests {
		if err := d.store.Set(ctx, &req.Requests[i]); err != nil {
			if StatusOf(err) == abi.StatusDeadline {
				return err
			}
			res.Errors = append(res.Errors, BulkItemError(i, req.Requests[i].Key, err))
		}
	}
	res.Encode(&d.enc)
	return nil
}

func (d *dispatcher) bulkDeleteEach(ctx context.Context, req *abi.StateBulkDeleteRequest) error {
	var res abi.BulkResult
	for i := range req.Requests {
		if err := d.store.Delete(ctx, &req.Requests[i]); err != nil {
			if StatusOf(err) == abi.StatusDeadline {
				return err
			}
			res.Errors = append(res.Errors, BulkItemError(i, req.Requests[i].Key, err))
		}
	}
	res.Encode(&d.enc)
	return nil
}

// BulkItemError is the failure err of request i of a bulk operation: its
// index, key (a bulk publish's entry: its topic) and the status and
// message the SDK would send for err alone.
func BulkItemError(i int, key string, err error) abi.ItemError {
	return abi.ItemError{Key: key, Status: StatusOf(err), Message: recordOf(err).Message, Index: uint32(i), HasIndex: true}
}
