package api

import "testing"

func TestReadTopicOutcome(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   TopicOutcome
	}{
		{200, "", TopicSuccess},
		{204, "", TopicSuccess},
		{200, "ok", TopicSuccess},
		{200, `{"status":"SUCCESS"}`, TopicSuccess},
		{200, ` {"status":"success"} `, TopicSuccess},
		{200, `{"other":1}`, TopicSuccess},
		{200, `{"status":""}`, TopicSuccess},
		{200, `{"status":"DROP"}`, TopicDrop},
		{200, `{"status":"drop"}`, TopicDrop},
		{200, `{"status":"RETRY"}`, TopicRetry},
		{200, `{"status":"LATER"}`, TopicRetry},
		{200, `{"status":`, TopicSuccess},
		{404, `{"status":"SUCCESS"}`, TopicDrop},
		{500, "", TopicRetry},
		{302, "", TopicRetry},
		{429, `{"status":"SUCCESS"}`, TopicRetry},
	} {
		if got := ReadTopicOutcome(&AppResponse{Status: tc.status, Body: []byte(tc.body)}); got != tc.want {
			t.Errorf("%d %q: %d, want %d", tc.status, tc.body, got, tc.want)
		}
	}
}
