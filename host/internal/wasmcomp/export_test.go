package wasmcomp

// BatchedGets is how many Gets bulk gets answered.
func (s *StateStore) BatchedGets() int64 { return s.gets.batched.Load() }
