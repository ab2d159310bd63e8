package abi

// PublishRequest publishes one message.
type PublishRequest struct {
	Topic       string            // 1
	Data        []byte            // 2
	ContentType string            // 3
	Metadata    map[string]string // 4
}

// Encode appends m's fields.
func (m *PublishRequest) Encode(e *Encoder) {
	e.String(1, m.Topic)
	e.Blob(2, m.Data)
	e.OptString(3, m.ContentType)
	e.Map(4, m.Metadata)
}

// Decode fills m from b.
func (m *PublishRequest) Decode(b []byte) error { *m = PublishRequest{}; return decodeMessage(b, m) }

func (m *PublishRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Topic = d.String(t, p)
		case 2:
			m.Data = d.Blob(t, p)
		case 3:
			m.ContentType = d.String(t, p)
		case 4:
			m.Metadata = d.Map(t, p)
		}
	}
}

// BulkPublishRequest publishes several messages in one call (ABI 1.2,
// PubSubBulkPublish). Entries may name different topics; the guest
// publishes them in order and answers a BulkResult whose ItemErrors carry
// the failed entries' topics (as Key) and indexes. The host builds one
// from publishes of several callers that queued while every instance was
// busy.
type BulkPublishRequest struct {
	Requests []PublishRequest // 1 (repeated message)
}

// Encode appends m's fields.
func (m *BulkPublishRequest) Encode(e *Encoder) {
	for i := range m.Requests {
		mark := e.Begin(1)
		m.Requests[i].Encode(e)
		e.End(mark)
	}
}

// Decode fills m from b. It reuses the array of m.Requests, so a guest
// that decodes into one message per call allocates it once.
func (m *BulkPublishRequest) Decode(b []byte) error {
	*m = BulkPublishRequest{Requests: m.Requests[:0]}
	return decodeMessage(b, m)
}

func (m *BulkPublishRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		if tag == 1 {
			m.Requests = append(m.Requests, PublishRequest{})
			nested(d, t, p, &m.Requests[len(m.Requests)-1])
		}
	}
}

// SubscribeRequest prepares the instance it is sent to as the subscriber
// of one topic (e.g. creates a consumer group). Later Poll, Ack and Nack
// calls for the topic go to the same instance.
type SubscribeRequest struct {
	Topic    string            // 1
	Metadata map[string]string // 2
}

// Encode appends m's fields.
func (m *SubscribeRequest) Encode(e *Encoder) {
	e.String(1, m.Topic)
	e.Map(2, m.Metadata)
}

// Decode fills m from b.
func (m *SubscribeRequest) Decode(b []byte) error {
	*m = SubscribeRequest{}
	return decodeMessage(b, m)
}

func (m *SubscribeRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Topic = d.String(t, p)
		case 2:
			m.Metadata = d.Map(t, p)
		}
	}
}

// PollRequest asks for up to MaxMessages messages, waiting at most
// MaxWaitMillis for the first one.
type PollRequest struct {
	Topic         string // 1
	MaxMessages   uint32 // 2
	MaxWaitMillis uint32 // 3
}

// Encode appends m's fields.
func (m *PollRequest) Encode(e *Encoder) {
	e.String(1, m.Topic)
	e.U64(2, uint64(m.MaxMessages))
	e.U64(3, uint64(m.MaxWaitMillis))
}

// Decode fills m from b.
func (m *PollRequest) Decode(b []byte) error { *m = PollRequest{}; return decodeMessage(b, m) }

func (m *PollRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Topic = d.String(t, p)
		case 2:
			m.MaxMessages = d.U32(t, p)
		case 3:
			m.MaxWaitMillis = d.U32(t, p)
		}
	}
}

// Message is one delivery; AckToken is opaque to the host and comes back
// in Ack or Nack.
type Message struct {
	AckToken    []byte            // 1
	Topic       string            // 2
	Data        []byte            // 3
	ContentType string            // 4
	Metadata    map[string]string // 5
}

// Encode appends m's fields.
func (m *Message) Encode(e *Encoder) {
	e.Blob(1, m.AckToken)
	e.String(2, m.Topic)
	e.Blob(3, m.Data)
	e.OptString(4, m.ContentType)
	e.Map(5, m.Metadata)
}

func (m *Message) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.AckToken = d.Blob(t, p)
		case 2:
			m.Topic = d.String(t, p)
		case 3:
			m.Data = d.Blob(t, p)
		case 4:
			m.ContentType = d.String(t, p)
		case 5:
			m.Metadata = d.Map(t, p)
		}
	}
}

// PollResponse carries the messages polled (possibly none).
type PollResponse struct {
	Messages []Message // 1 (repeated message)
}

// Encode appends m's fields.
func (m *PollResponse) Encode(e *Encoder) {
	for i := range m.Messages {
		mark := e.Begin(1)
		m.Messages[i].Encode(e)
		e.End(mark)
	}
}

// Decode fills m from b.
func (m *PollResponse) Decode(b []byte) error { *m = PollResponse{}; return decodeMessage(b, m) }

func (m *PollResponse) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		if tag == 1 {
			var msg Message
			nested(d, t, p, &msg)
			m.Messages = append(m.Messages, msg)
		}
	}
}

// AckRequest acknowledges (PubSubAck) or refuses (PubSubNack) messages.
type AckRequest struct {
	Topic  string   // 1
	Tokens [][]byte // 2 (repeated)
}

// Encode appends m's fields.
func (m *AckRequest) Encode(e *Encoder) {
	e.String(1, m.Topic)
	for _, t := range m.Tokens {
		e.Blob(2, t)
	}
}

// Decode fills m from b.
func (m *AckRequest) Decode(b []byte) error { *m = AckRequest{}; return decodeMessage(b, m) }

func (m *AckRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Topic = d.String(t, p)
		case 2:
			m.Tokens = append(m.Tokens, d.Blob(t, p))
		}
	}
}

// InvokeRequest calls an output binding.
type InvokeRequest struct {
	Operation string            // 1
	Data      []byte            // 2
	Metadata  map[string]string // 3
}

// Encode appends m's fields.
func (m *InvokeRequest) Encode(e *Encoder) {
	e.String(1, m.Operation)
	e.Blob(2, m.Data)
	e.Map(3, m.Metadata)
}

// Decode fills m from b.
func (m *InvokeRequest) Decode(b []byte) error { *m = InvokeRequest{}; return decodeMessage(b, m) }

func (m *InvokeRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Operation = d.String(t, p)
		case 2:
			m.Data = d.Blob(t, p)
		case 3:
			m.Metadata = d.Map(t, p)
		}
	}
}

// InvokeResponse is an output binding's answer. An empty output (no fields)
// means no content.
type InvokeResponse struct {
	Data        []byte            // 1
	ContentType string            // 2
	Metadata    map[string]string // 3
}

// Encode appends m's fields. The data field is always written, so an empty
// body still encodes as a response.
func (m *InvokeResponse) Encode(e *Encoder) {
	e.Blob(1, m.Data)
	e.OptString(2, m.ContentType)
	e.Map(3, m.Metadata)
}

// Decode fills m from b.
func (m *InvokeResponse) Decode(b []byte) error {
	*m = InvokeResponse{}
	return decodeMessage(b, m)
}

func (m *InvokeResponse) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Data = d.Blob(t, p)
		case 2:
			m.ContentType = d.String(t, p)
		case 3:
			m.Metadata = d.Map(t, p)
		}
	}
}

// ReadRequest polls an input binding for events.
type ReadRequest struct {
	MaxEvents     uint32 // 1
	MaxWaitMillis uint32 // 2
}

// Encode appends m's fields.
func (m *ReadRequest) Encode(e *Encoder) {
	e.U64(1, uint64(m.MaxEvents))
	e.U64(2, uint64(m.MaxWaitMillis))
}

// Decode fills m from b.
func (m *ReadRequest) Decode(b []byte) error { *m = ReadRequest{}; return decodeMessage(b, m) }

func (m *ReadRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.MaxEvents = d.U32(t, p)
		case 2:
			m.MaxWaitMillis = d.U32(t, p)
		}
	}
}

// Event is one input-binding event.
type Event struct {
	Token    []byte            // 1
	Data     []byte            // 2
	Metadata map[string]string // 3
}

// Encode appends m's fields.
func (m *Event) Encode(e *Encoder) {
	e.Blob(1, m.Token)
	e.Blob(2, m.Data)
	e.Map(3, m.Metadata)
}

func (m *Event) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Token = d.Blob(t, p)
		case 2:
			m.Data = d.Blob(t, p)
		case 3:
			m.Metadata = d.Map(t, p)
		}
	}
}

// ReadResponse carries the events read (possibly none).
type ReadResponse struct {
	Events []Event // 1 (repeated message)
}

// Encode appends m's fields.
func (m *ReadResponse) Encode(e *Encoder) {
	for i := range m.Events {
		mark := e.Begin(1)
		m.Events[i].Encode(e)
		e.End(mark)
	}
}

// Decode fills m from b.
func (m *ReadResponse) Decode(b []byte) error { *m = ReadResponse{}; return decodeMessage(b, m) }

func (m *ReadResponse) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		if tag == 1 {
			var ev Event
			nested(d, t, p, &ev)
			m.Events = append(m.Events, ev)
		}
	}
}

// ReadAckRequest tells an input binding what the app made of an event: an
// empty Error means accepted.
type ReadAckRequest struct {
	Token    []byte // 1
	Error    string // 2
	Response []byte // 3: the app's reply body
}

// Encode appends m's fields.
func (m *ReadAckRequest) Encode(e *Encoder) {
	e.Blob(1, m.Token)
	e.OptString(2, m.Error)
	if len(m.Response) > 0 {
		e.Blob(3, m.Response)
	}
}

// Decode fills m from b.
func (m *ReadAckRequest) Decode(b []byte) error {
	*m = ReadAckRequest{}
	return decodeMessage(b, m)
}

func (m *ReadAckRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Token = d.Blob(t, p)
		case 2:
			m.Error = d.String(t, p)
		case 3:
			m.Response = d.Blob(t, p)
		}
	}
}

// HTTPRequest is the request of wapr_http_v1.request.
type HTTPRequest struct {
	Method        string            // 1
	URL           string            // 2
	Headers       map[string]string // 3 (multiple values joined with ", ")
	Body          []byte            // 4
	TimeoutMillis uint32            // 5 (0: the call's deadline)
}

// Encode appends m's fields.
func (m *HTTPRequest) Encode(e *Encoder) {
	e.String(1, m.Method)
	e.String(2, m.URL)
	e.Map(3, m.Headers)
	if len(m.Body) > 0 {
		e.Blob(4, m.Body)
	}
	e.OptU64(5, uint64(m.TimeoutMillis))
}

// Decode fills m from b.
func (m *HTTPRequest) Decode(b []byte) error { *m = HTTPRequest{}; return decodeMessage(b, m) }

func (m *HTTPRequest) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Method = d.String(t, p)
		case 2:
			m.URL = d.String(t, p)
		case 3:
			m.Headers = d.Map(t, p)
		case 4:
			m.Body = d.Blob(t, p)
		case 5:
			m.TimeoutMillis = d.U32(t, p)
		}
	}
}

// HTTPResponse is what wapr_http_v1.response_read yields.
type HTTPResponse struct {
	Status  uint32            // 1
	Headers map[string]string // 2
	Body    []byte            // 3
}

// Encode appends m's fields.
func (m *HTTPResponse) Encode(e *Encoder) {
	e.U64(1, uint64(m.Status))
	e.Map(2, m.Headers)
	e.Blob(3, m.Body)
}

// Decode fills m from b.
func (m *HTTPResponse) Decode(b []byte) error { *m = HTTPResponse{}; return decodeMessage(b, m) }

func (m *HTTPResponse) decodeFields(d *Decoder) {
	for {
		tag, t, p, ok := d.Next()
		if !ok {
			return
		}
		switch tag {
		case 1:
			m.Status = d.U32(t, p)
		case 2:
			m.Headers = d.Map(t, p)
		case 3:
			m.Body = d.Blob(t, p)
		}
	}
}
