/**
 * A runner's health endpoint: plain HTTP on a port of its own, for the
 * probes of Kubernetes or of a process manager. `GET /live` answers 200 for
 * as long as the endpoint is up (the process serves); `GET /ready` answers
 * 200 while the runner accepts requests, and 503 before it listens and from
 * the moment it drains. It tells nothing else, and takes no input.
 */
import * as Http from "node:http"
import type * as Net from "node:net"
import { Effect, type Scope } from "effect"
import * as SocketServer from "effect/socket/SocketServer"

/** Where the endpoint listens. */
export interface Settings {
  readonly host: string
  readonly port: number
}

/** What readiness reports: `ready` only while the runner accepts requests. */
export type State = "starting" | "ready" | "draining"

/** The paths of the endpoint. */
export const paths = { ready: "/ready", live: "/live" } as const

const answer = (request: Http.IncomingMessage, response: Http.ServerResponse, status: number, body: string) => {
  response.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" })
  response.end(request.method === "HEAD" ? undefined : `${body}\n`)
}

/** Listens on `settings.host:port` for as long as the scope lives; `state` is read at each probe. */
export const listen = (
  settings: Settings,
  state: () => State
): Effect.Effect<Settings, SocketServer.SocketServerError, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.callback<Http.Server, SocketServer.SocketServerError>((resume) => {
        const server = Http.createServer((request, response) => {
          const path = (request.url ?? "").split("?")[0]
          if (request.method !== "GET" && request.method !== "HEAD") {
            response.setHeader("allow", "GET, HEAD")
            return answer(request, response, 405, "only GET and HEAD")
          }
          if (path === paths.live) return answer(request, response, 200, "live")
          if (path === paths.ready) {
            const now = state()
            return answer(request, response, now === "ready" ? 200 : 503, now)
          }
          return answer(request, response, 404, `the paths are ${paths.ready} and ${paths.live}`)
        })
        server.once("error", (cause) =>
          resume(
            Effect.fail(
              new SocketServer.SocketServerError({ reason: new SocketServer.SocketServerOpenError({ cause }) })
            )
          )
        )
        server.listen({ host: settings.host, port: settings.port }, () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.callback<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    ),
    (server) => {
      const address = server.address() as Net.AddressInfo
      return { host: address.address, port: address.port }
    }
  )
