// Command udpecho is the e2e suite's UDP peer (busybox-static has no UDP
// server): `udpecho serve PORT` answers each datagram with "echo:" + it;
// `udpecho send HOST:PORT MSG` sends one and prints the answer.
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: udpecho serve PORT | udpecho send HOST:PORT MSG")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		c, err := net.ListenPacket("udp", ":"+os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				continue
			}
			c.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	case "send":
		c, err := net.Dial("udp", os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write([]byte(os.Args[3]))
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(string(buf[:n]))
	}
}
