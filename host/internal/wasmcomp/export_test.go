package wasmcomp

// BatchedGets is how many Gets bulk gets answered.
func (s *StateStore) BatchedGets() int64 { return s.gets.batched.Load() }

// BatchedSets is how many Sets bulk sets answered.
func (s *StateStore) BatchedSets() int64 { return s.sets.batched.Load() }
