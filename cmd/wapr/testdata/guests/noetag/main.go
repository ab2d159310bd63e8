// Command noetag is a deliberately broken Wasm state store for the tests of
// `wapr conformance`: it claims the ETAG feature but ignores ETags, so the
// suite must fail it and name the ETag cases.
package main

import (
	"context"

	"github.com/wapr-dev/wapr/abi"
	guest "github.com/wapr-dev/wapr/sdk-guest"
)

func init() {
	guest.Export(abi.Descriptor{Name: "noetag", Types: []string{"state.noetag"}, Features: []string{"ETAG"}}, &store{items: map[string][]byte{}})
}

func main() {}

type store struct{ items map[string][]byte }

func (s *store) Init(context.Context, guest.Metadata) error { return nil }

func (s *store) Get(_ context.Context, req *abi.StateGetRequest) (*abi.StateGetResponse, error) {
	v, ok := s.items[req.Key]
	if !ok {
		return nil, guest.NotFound(req.Key)
	}
	return &abi.StateGetResponse{Data: v, ETag: "1"}, nil
}

func (s *store) Set(_ context.Context, req *abi.StateSetRequest) error {
	s.items[req.Key] = append([]byte(nil), req.Value...)
	return nil
}

func (s *store) Delete(_ context.Context, req *abi.StateDeleteRequest) error {
	delete(s.items, req.Key)
	return nil
}
