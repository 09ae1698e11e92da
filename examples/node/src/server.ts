import express, { Request, Response } from "express";
import http from "http";
import { AddressInfo } from "net";
import os from "os";

const app = express();

app.get("/", (_req: Request, res: Response) => {
  res.json({ service: "hello-node", node: process.version, host: os.hostname() });
});

// `--selftest` serves one request on a loopback port, prints it and exits, so the image can be
// checked with `run IMAGE --selftest` without publishing ports.
if (process.argv.includes("--selftest")) {
  const server = app.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo;
    http.get(`http://127.0.0.1:${port}/`, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => {
        console.log(`GET / -> ${res.statusCode} ${body}`);
        server.close();
      });
    });
  });
} else {
  const port = Number(process.env.PORT ?? 3000);
  app.listen(port, () => console.log(`listening on ${port}`));
}
