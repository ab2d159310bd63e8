package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/wapr-dev/wapr/conformance"
	"github.com/wapr-dev/wapr/conformance/internal/suite"
	"github.com/wapr-dev/wapr/host/component"
	contract "github.com/wapr-dev/wapr/host/component/state"
)

// instanceCases checks that the instances serving the component share its
// data; see Config.Instances.
func (c *checker) instanceCases(t conformance.T, g *suite.Group) {
	if c.cfg.Instances < 2 {
		g.Skip(t, "Config.Instances is %d: one instance serves the component, so nothing has to be shared", max(c.cfg.Instances, 1))
	}
	g.Case(t, "shared-state", c.sharedState)
}

// sharedState writes through the main store and reads through a second one
// made by newStore, and the other way round. Wherever the two disagree the
// component keeps its data in instance memory.
func (c *checker) sharedState(t conformance.T) {
	other := c.newStore()
	if other == nil {
		t.Fatalf("newStore returned nil for a second instance")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
		defer cancel()
		_ = other.Close(ctx)
	})
	ctx, cancel := c.ctx(t)
	md := component.Metadata{Name: c.cfg.Name, Type: c.cfg.Type, Version: c.cfg.Version, Properties: c.cfg.Metadata}
	err := other.Init(ctx, md)
	cancel()
	if err != nil {
		t.Fatalf("Init of a second instance: %v", err)
	}
	call := func(f func(ctx context.Context) error) error {
		ctx, cancel := c.ctx(t)
		defer cancel()
		return f(ctx)
	}
	getOther := func(key string) (*contract.GetResponse, error) {
		var res *contract.GetResponse
		err := call(func(ctx context.Context) (err error) {
			res, err = other.Get(ctx, &contract.GetRequest{Key: key})
			return err
		})
		if err == nil && res == nil {
			err = errors.New("Get returned neither a response nor an error")
		}
		return res, err
	}

	k := c.newKey(t, "k")
	c.mustSet(t, k, []byte("written through instance 1"))
	switch res, err := getOther(k); {
	case err != nil:
		t.Fatalf("%s", c.instanceLocal(fmt.Sprintf("a value written through one instance is not there when read through another (Get: %v)", err)))
	case string(res.Data) != "written through instance 1":
		t.Fatalf("%s", c.instanceLocal(fmt.Sprintf("a value written through one instance reads as %s through another", show(res.Data))))
	}

	if err := call(func(ctx context.Context) error {
		return other.Set(ctx, &contract.SetRequest{Key: k, Value: []byte("written through instance 2")})
	}); err != nil {
		t.Fatalf("Set through the second instance: %v", err)
	}
	if res, err := c.get(t, k); err != nil || string(res.Data) != "written through instance 2" {
		got := fmt.Sprint(err)
		if err == nil {
			got = show(res.Data)
		}
		t.Fatalf("%s", c.instanceLocal("an overwrite through the second instance is not seen through the first (Get: "+got+")"))
	}

	if c.etag {
		e := c.etagOf(t, k)
		if err := call(func(ctx context.Context) error {
			return other.Set(ctx, &contract.SetRequest{Key: k, Value: []byte("guarded"), ETag: ptr(e)})
		}); err != nil {
			t.Errorf("%s", c.instanceLocal(fmt.Sprintf("the ETag %q read through one instance is refused by another (Set: %v)", e, err)))
		}
	}

	if err := call(func(ctx context.Context) error {
		return other.Delete(ctx, &contract.DeleteRequest{Key: k})
	}); err != nil {
		t.Fatalf("Delete through the second instance: %v", err)
	}
	if res, err := c.get(t, k); err == nil {
		t.Errorf("%s", c.instanceLocal("a key deleted through one instance still reads as "+show(res.Data)+" through another"))
	} else if !errors.Is(err, component.ErrNotFound) {
		t.Errorf("Get after a Delete through the second instance: %v, want an error wrapping component.ErrNotFound", err)
	}
}

// instanceLocal explains a failure of instances/shared-state.
func (c *checker) instanceLocal(what string) string {
	return fmt.Sprintf("instance-local state: %s. The component keeps its data in instance memory, but "+
		"%d instances serve it (Config.Instances; for a Wasm component its pool, wapr.dev/pool-size, default 8), "+
		"each with a memory of its own, so which data a request sees depends on the instance that takes it. "+
		"Keep the data in a backend, or serve the component with wapr.dev/pool-size: \"1\" "+
		"(abi/SPEC.md §3.6; even then it is lost whenever the instance is recycled, discarded or reloaded)",
		what, c.cfg.Instances)
}
