// Command beta is the other app of the run file: on /hello it asks the
// caller who it is (calling /whoami of alpha through its own sidecar),
// publishes a greeting to $TOPIC on "pubsub", and answers.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	sidecar := "http://127.0.0.1:" + os.Getenv("DAPR_HTTP_PORT")
	topic := os.Getenv("TOPIC")

	http.HandleFunc("/dapr/", http.NotFound) // no subscriptions
	http.HandleFunc("POST /hello", func(w http.ResponseWriter, r *http.Request) {
		caller := r.Header.Get("dapr-caller-app-id")
		res, err := http.Post(sidecar+"/v1.0/invoke/"+caller+"/method/whoami", "text/plain", nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		name, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			http.Error(w, "whoami: "+res.Status, http.StatusBadGateway)
			return
		}
		greeting := fmt.Sprintf(`{"from":%q,"to":%q}`, os.Getenv("APP_ID"), name)
		res, err = http.Post(sidecar+"/v1.0/publish/pubsub/"+topic, "application/json", strings.NewReader(greeting))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			http.Error(w, "publish: "+res.Status, http.StatusBadGateway)
			return
		}
		fmt.Printf("greeted %s\n", name)
		fmt.Fprintf(w, "hello %s, I am %s", name, os.Getenv("APP_ID"))
	})
	go func() {
		if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("APP_PORT"), nil); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	}()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	fmt.Printf("beta stopping (%s)\n", <-stop)
}
