package guest

import (
	"context"
	"reflect"
	"testing"

	"github.com/wapr-dev/wapr/abi"
)

// bulkBroker records the entries of its bulk publishes and fails those of
// topic "audit".
type bulkBroker struct {
	nopPubSub
	got []abi.PublishRequest
}

func (b *bulkBroker) BulkPublish(_ context.Context, req *abi.BulkPublishRequest) (*abi.BulkResult, error) {
	var res abi.BulkResult
	for i, r := range req.Requests {
		// The request's bytes are the SDK's: keep copies.
		b.got = append(b.got, abi.PublishRequest{Topic: r.Topic, Data: append([]byte(nil), r.Data...), ContentType: r.ContentType})
		if r.Topic == "audit" {
			res.Errors = append(res.Errors, BulkItemError(i, r.Topic, InvalidArgument("bad")))
		}
	}
	return &res, nil
}

// TestBulkPublish: a broker implementing BulkPublisher gets the entries of
// the golden bulk publish in order and its answer is the golden result; a
// broker without it answers NOT_SUPPORTED, which tells the host not to
// batch it.
func TestBulkPublish(t *testing.T) {
	desc := abi.Descriptor{Types: []string{"pubsub.x"}}
	b := &bulkBroker{}
	d, err := newDispatcher(desc, b)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := d.dispatch(famInit, 0, nil); st != abi.StatusOK {
		t.Fatalf("init: %s", st)
	}
	st, out := d.dispatch(famPubSub, abi.PubSubBulkPublish, readGolden(t, "bulk_publish"))
	if st != abi.StatusOK {
		t.Fatalf("bulk publish: %s", st)
	}
	want := []abi.PublishRequest{{Topic: "orders", Data: []byte(`{"id":1}`)}, {Topic: "audit", Data: []byte("x"), ContentType: "text/plain"}}
	if !reflect.DeepEqual(b.got, want) {
		t.Fatalf("the broker got %+v, want %+v", b.got, want)
	}
	if golden := readGolden(t, "bulk_publish_result"); string(out) != string(golden) {
		t.Fatalf("result\n got %x\nwant %x", out, golden)
	}

	plain, err := newDispatcher(desc, &nopPubSub{})
	if err != nil {
		t.Fatal(err)
	}
	plain.dispatch(famInit, 0, nil)
	st, out = plain.dispatch(famPubSub, abi.PubSubBulkPublish, readGolden(t, "bulk_publish"))
	var rec abi.ErrorRecord
	if err := rec.Decode(out); err != nil || st != abi.StatusNotSupported {
		t.Fatalf("bulk publish to a broker without BulkPublisher: %s %q (%v), want NOT_SUPPORTED", st, rec.Message, err)
	}
}
