// Command alpha is one of the two apps of the run file: it subscribes to
// $TOPIC on the broker "pubsub", answers /whoami with its app id, and calls
// beta's /hello through its sidecar until beta answers. Both apps talk to
// their sidecar on DAPR_HTTP_PORT and listen on APP_PORT, as `dapr run`
// (and `wapr run`) tell them.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	sidecar := "http://127.0.0.1:" + os.Getenv("DAPR_HTTP_PORT")
	topic := os.Getenv("TOPIC")

	http.HandleFunc("GET /dapr/subscribe", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"pubsubname":"pubsub","topic":%q,"route":"/greetings"}]`, topic)
	})
	http.HandleFunc("POST /greetings", func(w http.ResponseWriter, r *http.Request) {
		var event struct{ Data json.RawMessage }
		json.NewDecoder(r.Body).Decode(&event)
		fmt.Printf("received %s\n", event.Data)
	})
	http.HandleFunc("POST /whoami", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv("APP_ID"))
	})
	go func() {
		if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("APP_PORT"), nil); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	}()

	go func() {
		for {
			res, err := http.Post(sidecar+"/v1.0/invoke/beta/method/hello", "text/plain", strings.NewReader("hi"))
			if err == nil {
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					fmt.Printf("beta answered: %s\n", body)
					return
				}
			}
			time.Sleep(200 * time.Millisecond) // beta or its sidecar is not up yet
		}
	}()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	fmt.Printf("alpha stopping (%s)\n", <-stop)
}
