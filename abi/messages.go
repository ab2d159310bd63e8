package abi

// Messages of ABI v1. Each has Encode, which appends its fields, and
// Decode, which fills it from an encoded message: []byte fields of a decoded
// message alias the input, strings and maps are copies. Unknown tags are
// skipped, so a newer peer may send fields an older one does not know.
// Field tags are listed in SPEC.md; they never change meaning within v1.

// decoder is implemented by every message, for nesting.
type decoder interface{ decodeFields(d *Decoder) }

func decodeMessage(b []byte, m decoder) error {
	d := NewDecoder(b)
	m.decodeFields(&d)
	return d.Err()
}

// nested decodes a nested message payload into m.
func nested(d *Decoder, t Type, p []byte, m decoder) {
	sub := d.Message(t, p)
	m.decodeFields(&sub)
	if err := sub.Err(); err != nil {
		d.Fail(err)
	}
}

// Concurrency and consistency values of state requests.
const (
	ConcurrencyUnspecified uint8 = 0
	ConcurrencyFirstWrite  uint8 = 1
	ConcurrencyLastWrite   uint8 = 2

	ConsistencyUnspecified uint8 = 0
	ConsistencyEventual    uint8 = 1
	ConsistencyStrong      uint8 = 2
)

// Descriptor is a component's self-description, pushed by wapr_info.
type Descriptor struct {
	ABIMinor     uint32   // 1: the ABI minor version the guest was built for
	Types        []string // 2 (repeated): component types provided, e.g. "state.redis"
	Version      string   // 3: the component's own version
	Features     []string // 4 (repeated): Dapr feature names, e.g. "ETAG", and wapr's FeaturePollAhead
	EndpointKeys []string // 5 (repeated): metadata keys whose values name network endpoints
	Operations   []string // 6 (repeated): binding operations offered
	Name         string   // 7: implementation name, e.g. "wapr-state-redis"
}

// Encode appends m's fields.
func (m *Descriptor) Encode(e *Encoder) {
	e.U64(1, uint64(m.ABIMinor))
	for _, s := range m.Types {
		e.String(2, s)
	}
	e.OptString(3, m.Version)
	for _, s := range m.Features {
		e.String(4, s)
	}
	for _, s := range m.EndpointKeys {
		e.String(5, s)
	}
	for _, s := range m.Operations {
		e.String(6, s)
	}
	e.OptString(7, m.Name)
}

// Decode fills m from b.
func (m *Descriptor) Decode(b []byte) error { *m = Descriptor{}; return decodeMessage(b, m) }

func (m *Descriptor) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.ABIMinor = d.U32(t, p)
		case 2:
			m.Types = append(m.Types, d.String(t, p))
		case 3:
			m.Version = d.String(t, p)
		case 4:
			m.Features = append(m.Features, d.String(t, p))
		case 5:
			m.EndpointKeys = append(m.EndpointKeys, d.String(t, p))
		case 6:
			m.Operations = append(m.Operations, d.String(t, p))
		case 7:
			m.Name = d.String(t, p)
		}
	}
}

// InitRequest is the input of wapr_init.
type InitRequest struct {
	Name     string            // 1: the component's name (metadata.name)
	Type     string            // 2: the type it is loaded as (spec.type)
	Metadata map[string]string // 3: spec.metadata
}

// Encode appends m's fields.
func (m *InitRequest) Encode(e *Encoder) {
	e.String(1, m.Name)
	e.String(2, m.Type)
	e.Map(3, m.Metadata)
}

// Decode fills m from b.
func (m *InitRequest) Decode(b []byte) error { *m = InitRequest{}; return decodeMessage(b, m) }

func (m *InitRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Name = d.String(t, p)
		case 2:
			m.Type = d.String(t, p)
		case 3:
			m.Metadata = d.Map(t, p)
		}
	}
}

// ErrorRecord is the output of any call whose status is not OK.
type ErrorRecord struct {
	Message string // 1: for people
	Key     string // 2: the key concerned, if any
}

// Encode appends m's fields.
func (m *ErrorRecord) Encode(e *Encoder) {
	e.String(1, m.Message)
	e.OptString(2, m.Key)
}

// Decode fills m from b.
func (m *ErrorRecord) Decode(b []byte) error { *m = ErrorRecord{}; return decodeMessage(b, m) }

func (m *ErrorRecord) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Message = d.String(t, p)
		case 2:
			m.Key = d.String(t, p)
		}
	}
}

// StateGetRequest reads one key.
type StateGetRequest struct {
	Key         string            // 1
	Metadata    map[string]string // 2
	Consistency uint8             // 3
}

// Encode appends m's fields.
func (m *StateGetRequest) Encode(e *Encoder) {
	e.String(1, m.Key)
	e.Map(2, m.Metadata)
	e.OptU64(3, uint64(m.Consistency))
}

// Decode fills m from b.
func (m *StateGetRequest) Decode(b []byte) error { *m = StateGetRequest{}; return decodeMessage(b, m) }

func (m *StateGetRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Key = d.String(t, p)
		case 2:
			m.Metadata = d.Map(t, p)
		case 3:
			m.Consistency = d.U8(t, p)
		}
	}
}

// StateGetResponse is a value found.
type StateGetResponse struct {
	Data        []byte            // 1
	ETag        string            // 2 (absent: the store has no ETag for it)
	Metadata    map[string]string // 3
	ContentType string            // 4
}

// Encode appends m's fields.
func (m *StateGetResponse) Encode(e *Encoder) {
	e.Blob(1, m.Data)
	e.OptString(2, m.ETag)
	e.Map(3, m.Metadata)
	e.OptString(4, m.ContentType)
}

// Decode fills m from b.
func (m *StateGetResponse) Decode(b []byte) error {
	*m = StateGetResponse{}
	return decodeMessage(b, m)
}

func (m *StateGetResponse) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Data = d.Blob(t, p)
		case 2:
			m.ETag = d.String(t, p)
		case 3:
			m.Metadata = d.Map(t, p)
		case 4:
			m.ContentType = d.String(t, p)
		}
	}
}

// StateSetRequest writes one key. HasETag tells an empty ETag from none.
type StateSetRequest struct {
	Key         string            // 1
	Value       []byte            // 2
	ETag        string            // 3 (present when HasETag)
	HasETag     bool              //   (the presence of field 3)
	Metadata    map[string]string // 4
	Concurrency uint8             // 5
	Consistency uint8             // 6
	ContentType string            // 7
}

// Encode appends m's fields.
func (m *StateSetRequest) Encode(e *Encoder) {
	e.String(1, m.Key)
	e.Blob(2, m.Value)
	if m.HasETag {
		e.String(3, m.ETag)
	}
	e.Map(4, m.Metadata)
	e.OptU64(5, uint64(m.Concurrency))
	e.OptU64(6, uint64(m.Consistency))
	e.OptString(7, m.ContentType)
}

// Decode fills m from b.
func (m *StateSetRequest) Decode(b []byte) error { *m = StateSetRequest{}; return decodeMessage(b, m) }

func (m *StateSetRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Key = d.String(t, p)
		case 2:
			m.Value = d.Blob(t, p)
		case 3:
			m.ETag, m.HasETag = d.String(t, p), true
		case 4:
			m.Metadata = d.Map(t, p)
		case 5:
			m.Concurrency = d.U8(t, p)
		case 6:
			m.Consistency = d.U8(t, p)
		case 7:
			m.ContentType = d.String(t, p)
		}
	}
}

// StateDeleteRequest removes one key, guarded by an ETag when HasETag.
type StateDeleteRequest struct {
	Key         string            // 1
	ETag        string            // 3 (present when HasETag)
	HasETag     bool              //   (the presence of field 3)
	Metadata    map[string]string // 4
	Concurrency uint8             // 5
	Consistency uint8             // 6
}

// Encode appends m's fields.
func (m *StateDeleteRequest) Encode(e *Encoder) {
	e.String(1, m.Key)
	if m.HasETag {
		e.String(3, m.ETag)
	}
	e.Map(4, m.Metadata)
	e.OptU64(5, uint64(m.Concurrency))
	e.OptU64(6, uint64(m.Consistency))
}

// Decode fills m from b.
func (m *StateDeleteRequest) Decode(b []byte) error {
	*m = StateDeleteRequest{}
	return decodeMessage(b, m)
}

func (m *StateDeleteRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Key = d.String(t, p)
		case 3:
			m.ETag, m.HasETag = d.String(t, p), true
		case 4:
			m.Metadata = d.Map(t, p)
		case 5:
			m.Concurrency = d.U8(t, p)
		case 6:
			m.Consistency = d.U8(t, p)
		}
	}
}

// StateBulkGetRequest reads several keys.
type StateBulkGetRequest struct {
	Requests []StateGetRequest // 1 (repeated message)
}

// Encode appends m's fields.
func (m *StateBulkGetRequest) Encode(e *Encoder) {
	for i := range m.Requests {
		mark := e.Begin(1)
		m.Requests[i].Encode(e)
		e.End(mark)
	}
}

// Decode fills m from b.
func (m *StateBulkGetRequest) Decode(b []byte) error {
	*m = StateBulkGetRequest{}
	return decodeMessage(b, m)
}

func (m *StateBulkGetRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		if tag == 1 {
			var r StateGetRequest
			nested(d, t, p, &r)
			m.Requests = append(m.Requests, r)
		}
	}
}

// StateBulkGetItem is one key's result; Found is false for a missing key.
type StateBulkGetItem struct {
	Key      string            // 1
	Found    bool              // 2 (u64 1)
	Data     []byte            // 3
	ETag     string            // 4
	Metadata map[string]string // 5
	Error    string            // 6: reading this key failed
	// ContentType is the value's content type, as Get reports it (ABI
	// 1.1; a v1.0 guest leaves it out).
	ContentType string // 7
}

// Encode appends m's fields.
func (m *StateBulkGetItem) Encode(e *Encoder) {
	e.String(1, m.Key)
	if m.Found {
		e.U64(2, 1)
		e.Blob(3, m.Data)
	}
	e.OptString(4, m.ETag)
	e.Map(5, m.Metadata)
	e.OptString(6, m.Error)
	e.OptString(7, m.ContentType)
}

func (m *StateBulkGetItem) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Key = d.String(t, p)
		case 2:
			m.Found = d.U64(t, p) != 0
		case 3:
			m.Data = d.Blob(t, p)
		case 4:
			m.ETag = d.String(t, p)
		case 5:
			m.Metadata = d.Map(t, p)
		case 6:
			m.Error = d.String(t, p)
		case 7:
			m.ContentType = d.String(t, p)
		}
	}
}

// StateBulkGetResponse lists results in request order.
type StateBulkGetResponse struct {
	Items []StateBulkGetItem // 1 (repeated message)
}

// Encode appends m's fields.
func (m *StateBulkGetResponse) Encode(e *Encoder) {
	for i := range m.Items {
		mark := e.Begin(1)
		m.Items[i].Encode(e)
		e.End(mark)
	}
}

// Decode fills m from b.
func (m *StateBulkGetResponse) Decode(b []byte) error {
	*m = StateBulkGetResponse{}
	return decodeMessage(b, m)
}

func (m *StateBulkGetResponse) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		if tag == 1 {
			var it StateBulkGetItem
			nested(d, t, p, &it)
			m.Items = append(m.Items, it)
		}
	}
}

// StateBulkSetRequest writes several keys (not atomically).
type StateBulkSetRequest struct {
	Requests []StateSetRequest // 1 (repeated message)
}

// Encode appends m's fields.
func (m *StateBulkSetRequest) Encode(e *Encoder) {
	for i := range m.Requests {
		mark := e.Begin(1)
		m.Requests[i].Encode(e)
		e.End(mark)
	}
}

// Decode fills m from b.
func (m *StateBulkSetRequest) Decode(b []byte) error {
	*m = StateBulkSetRequest{}
	return decodeMessage(b, m)
}

func (m *StateBulkSetRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		if tag == 1 {
			var r StateSetRequest
			nested(d, t, p, &r)
			m.Requests = append(m.Requests, r)
		}
	}
}

// StateBulkDeleteRequest removes several keys (not atomically).
type StateBulkDeleteRequest struct {
	Requests []StateDeleteRequest // 1 (repeated message)
}

// Encode appends m's fields.
func (m *StateBulkDeleteRequest) Encode(e *Encoder) {
	for i := range m.Requests {
		mark := e.Begin(1)
		m.Requests[i].Encode(e)
		e.End(mark)
	}
}

// Decode fills m from b.
func (m *StateBulkDeleteRequest) Decode(b []byte) error {
	*m = StateBulkDeleteRequest{}
	return decodeMessage(b, m)
}

func (m *StateBulkDeleteRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		if tag == 1 {
			var r StateDeleteRequest
			nested(d, t, p, &r)
			m.Requests = append(m.Requests, r)
		}
	}
}

// ItemError is one key's failure in a bulk write.
type ItemError struct {
	Key     string // 1
	Status  Status // 2
	Message string // 3
	// Index is the failed request's position in the bulk request, when
	// HasIndex (ABI 1.1: guests of minor 1 set it; it tells apart requests
	// of one key).
	Index    uint32 // 4
	HasIndex bool
}

func (m *ItemError) encode(e *Encoder) {
	e.String(1, m.Key)
	e.U64(2, uint64(m.Status))
	e.OptString(3, m.Message)
	if m.HasIndex {
		e.U64(4, uint64(m.Index))
	}
}

func (m *ItemError) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Key = d.String(t, p)
		case 2:
			m.Status = Status(d.U32(t, p))
		case 3:
			m.Message = d.String(t, p)
		case 4:
			m.Index, m.HasIndex = d.U32(t, p), true
		}
	}
}

// BulkResult lists the items of a bulk write that failed; none means all
// succeeded.
type BulkResult struct {
	Errors []ItemError // 1 (repeated message)
}

// Encode appends m's fields.
func (m *BulkResult) Encode(e *Encoder) {
	for i := range m.Errors {
		mark := e.Begin(1)
		m.Errors[i].encode(e)
		e.End(mark)
	}
}

// Decode fills m from b.
func (m *BulkResult) Decode(b []byte) error { *m = BulkResult{}; return decodeMessage(b, m) }

func (m *BulkResult) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		if tag == 1 {
			var it ItemError
			nested(d, t, p, &it)
			m.Errors = append(m.Errors, it)
		}
	}
}

// StateOperation is one step of a transaction: exactly one of Set and
// Delete is set.
type StateOperation struct {
	Set    *StateSetRequest
	Delete *StateDeleteRequest
}

// StateTransactRequest applies operations in order, all or none. On the wire
// operations are fields 1 (upsert: StateSetRequest) and 2 (delete:
// StateDeleteRequest), interleaved in execution order.
type StateTransactRequest struct {
	Operations []StateOperation
	Metadata   map[string]string // 3
}

// Encode appends m's fields.
func (m *StateTransactRequest) Encode(e *Encoder) {
	for _, op := range m.Operations {
		switch {
		case op.Set != nil:
			mark := e.Begin(1)
			op.Set.Encode(e)
			e.End(mark)
		case op.Delete != nil:
			mark := e.Begin(2)
			op.Delete.Encode(e)
			e.End(mark)
		}
	}
	e.Map(3, m.Metadata)
}

// Decode fills m from b.
func (m *StateTransactRequest) Decode(b []byte) error {
	*m = StateTransactRequest{}
	return decodeMessage(b, m)
}

func (m *StateTransactRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			r := new(StateSetRequest)
			nested(d, t, p, r)
			m.Operations = append(m.Operations, StateOperation{Set: r})
		case 2:
			r := new(StateDeleteRequest)
			nested(d, t, p, r)
			m.Operations = append(m.Operations, StateOperation{Delete: r})
		case 3:
			m.Metadata = d.Map(t, p)
		}
	}
}
