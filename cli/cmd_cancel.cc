// `clisc cancel --coordinator ENDPOINT (--run NAME | --task ID) [--reason TEXT]`: asks a running
// coordinator to cancel its run or one task (and everything downstream of it). Running leases
// are revoked and their workers told to stop; the ledger records who asked and why.
#include <iostream>

#include "cli/args.h"
#include "cli/command.h"
#include "common/wire/curve_auth.h"
#include "common/wire/frame_codec.h"
#include "common/wire/router_framing.h"
#include "common/wire/wire_error.h"
#include "common/wire/zmq_socket.h"

namespace clisc::cli {
namespace {

StatusOr<wire::CancelAck> SendCancel(const ArgParser& args, const wire::CancelRequest& request,
                                     int timeout_ms) {
  ZmqSocketOptions options;
  if (args.Has("curve-key") || args.Has("curve-server-key")) {
    if (!args.Has("curve-key") || !args.Has("curve-server-key")) {
      return InvalidArgumentError("CurveZMQ needs both --curve-key and --curve-server-key");
    }
    ASSIGN_OR_RETURN(options.configure,
                     CurveClientFromFiles(args.Get("curve-server-key"), args.Get("curve-key")));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<ZmqContext> context, ZmqContext::Create(1));
  ASSIGN_OR_RETURN(ZmqSocket socket, ZmqSocket::Open(context, ZmqSocketType::kDealer, options));
  RETURN_IF_ERROR(socket.Connect(args.Get("coordinator")));
  wire::Envelope envelope = NewEnvelope(1);
  *envelope.mutable_cancel_request() = request;
  RETURN_IF_ERROR(socket.Send(MakeDealerFrames(EncodeFrame(envelope))));
  // The coordinator also sends heartbeats and other traffic to known peers; wait for the ack.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> frames,
                     socket.Receive(static_cast<int>(std::max<int64_t>(1, left.count()))));
    if (!frames) continue;
    std::vector<std::string_view> views(frames->begin(), frames->end());
    StatusOr<std::string_view> payload = ParseDealerFrames(views);
    if (!payload.ok()) continue;
    StatusOr<wire::Envelope> reply = DecodeFrame(payload->data(), payload->size());
    if (!reply.ok()) continue;
    if (reply->has_cancel_ack()) return reply->cancel_ack();
    if (reply->has_refused()) {
      return FailedPreconditionError("the coordinator refused: " + reply->refused().reason());
    }
  }
  return DeadlineExceededError("no answer from " + args.Get("coordinator") + " within " +
                               std::to_string(timeout_ms) +
                               " ms (is it running? with CurveZMQ, is this key allowed?)");
}

int RunCancel(const std::vector<std::string>& argv) {
  ArgParser args("cancel",
                 "cancel --coordinator ENDPOINT (--run NAME | --task ID) [--reason TEXT]",
                 "Cancel a run, or one task and what depends on it, on a running coordinator.");
  args.Option("coordinator", "ENDPOINT", "the coordinator's ZeroMQ endpoint",
              "tcp://127.0.0.1:5555")
      .Option("run", "NAME", "cancel the whole run")
      .Option("task", "ID", "cancel one task (its ledger id) and everything downstream of it")
      .Option("reason", "TEXT", "recorded in the ledger with the cancellation", "cancelled by user")
      .Option("timeout-ms", "MS", "how long to wait for the coordinator's answer", "5000")
      .Option("curve-key", "FILE", "this client's CurveZMQ key file (must be allowed)")
      .Option("curve-server-key", "FILE", "the coordinator's public key file")
      .Epilog("Exit status: 0 when the coordinator accepted, 1 when it refused or did not answer, "
              "2 for usage errors.");
  if (int code = ParseCommandLine(args, argv); code >= 0) return code;
  if (args.Has("run") == args.Has("task")) {
    std::cerr << "error: clisc cancel: give exactly one of --run and --task\n";
    return kExitUsage;
  }
  StatusOr<long long> timeout = args.GetInt("timeout-ms");
  if (!timeout.ok() || *timeout < 1) {
    std::cerr << "error: clisc cancel: --timeout-ms must be a positive number\n";
    return kExitUsage;
  }
  wire::CancelRequest request;
  if (args.Has("run")) request.set_run_id(args.Get("run"));
  if (args.Has("task")) request.set_task_id(args.Get("task"));
  request.set_reason(args.Get("reason"));
  StatusOr<wire::CancelAck> ack = SendCancel(args, request, static_cast<int>(*timeout));
  if (!ack.ok()) {
    std::cerr << "error: clisc cancel: " << ack.status().ToString() << "\n";
    return ack.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  if (!ack->accepted()) {
    std::cerr << "error: clisc cancel: " << FromWireError(ack->error()).ToString() << "\n";
    return kExitFailure;
  }
  std::cout << "cancelled " << ack->cancelled_tasks() << " task(s)\n";
  return kExitOk;
}

}  // namespace

CLISC_REGISTER_COMMAND("cancel", "cancel a run or a task on a running coordinator", RunCancel);

}  // namespace clisc::cli
