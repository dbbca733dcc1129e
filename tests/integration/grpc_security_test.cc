// The gRPC port against hostile or careless clients: API keys on every method but health, Abort
// limited to the caller's own requests, unguessable ids, reflection only when asked for,
// malformed requests, the receive limit, and TLS / mutual TLS with certificates this test makes
// with openssl, rotated while the server runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "server/api_keys.h"
#include "tests/support/command_runner.h"
#include "tests/support/grpc_test_client.h"
#include "tests/support/health_check.h"
#include "tests/support/server_process.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

namespace pb = kvserve::v1;
using namespace std::chrono_literals;

// A unary call of raw bytes to `method` (a server-streaming one that refuses gives its status the
// same way); its status.
grpc::Status RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& bytes, const std::string& authorization = "") {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  if (!authorization.empty()) context.AddMetadata("authorization", authorization);
  grpc::Slice slice(bytes);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string Sha256Hex(const std::string& key) {
  const auto d = server::ApiKeys::Sha256(key);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

// A request that decodes for seconds on the synthetic model (as in grpc_cancellation_test).
pb::GenerateRequest LongRequest(const std::string& id) {
  std::vector<int32_t> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back(100 + i * 37);
  pb::GenerateRequest r = GreedyIdsRequest(prompt, 1000);
  r.set_request_id(id);
  r.mutable_sampling()->set_ignore_eos(true);
  return r;
}

// ---------------------------------------------------------------------------------------------
// API keys and ownership

class GrpcAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = MakeTempDir();
    key_file_ = dir + "/keys";
    WriteFile(key_file_, absl::StrCat("# two teams\n", Sha256Hex("key-a"), "  team a\n",
                                      Sha256Hex("key-b"), "\n"));
    auto server = ServerProcess::Start({"--model", "synthetic:smollm2-135m", "--max-running", "1",
                                        "--max-batch-tokens", "8", "--kv-cache-memory", "256MiB",
                                        "--api-key-file", key_file_});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = server_->NewStub();
  }

  // GetServerStatus with `authorization` (none when empty).
  grpc::Status Status(const std::string& authorization) {
    grpc::ClientContext context;
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    pb::ServerStatus status;
    return stub_->GetServerStatus(&context, pb::GetServerStatusRequest(), &status);
  }

  grpc::Status Abort(const std::string& authorization, const std::string& id, bool* found) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", authorization);
    pb::AbortRequest request;
    request.set_request_id(id);
    pb::AbortResponse response;
    grpc::Status status = stub_->Abort(&context, request, &response);
    *found = response.found();
    return status;
  }

  std::string key_file_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<pb::Inference::Stub> stub_;
};

TEST_F(GrpcAuthTest, EveryMethodButHealthNeedsAKey) {
  EXPECT_EQ(Status("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Status("Bearer key-c").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Status("Basic key-a").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Status(absl::StrCat("Bearer ", Sha256Hex("key-a"))).error_code(),
            grpc::StatusCode::UNAUTHENTICATED)
      << "the file's hash is not itself a key";
  EXPECT_TRUE(Status("Bearer key-a").ok());
  EXPECT_TRUE(Status("bearer key-b").ok());

  const auto channel = server_->NewChannel();
  for (const char* method : {"/kvserve.v1.Inference/GetModelInfo", "/kvserve.v1.Inference/Abort",
                             "/kvserve.v1.Inference/Generate"}) {
    const grpc::Status status = RawCall(channel, method, "");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << method;
  }
  EXPECT_TRUE(RawCall(channel, "/kvserve.v1.Inference/GetModelInfo", "", "Bearer key-a").ok());
  // Health answers anyone (probes carry no key).
  auto health = CheckHealth(channel, "kvserve.v1.Inference", 5000ms);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthStatus::kServing);
  // Keys are never logged.
  EXPECT_EQ(server_->Log().find("key-a"), std::string::npos);
}

TEST_F(GrpcAuthTest, AbortReachesOnlyTheCallersOwnRequests) {
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer key-a");
  auto reader = stub_->Generate(&context, LongRequest("team-a-request"));
  pb::GenerateResponse response;
  int tokens = 0;
  while (tokens < 2 && reader->Read(&response)) tokens += response.token_ids_size();
  ASSERT_GE(tokens, 2) << "decoding";

  bool found = true;
  const grpc::Status foreign = Abort("Bearer key-b", "team-a-request", &found);
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::NOT_FOUND) << foreign.error_message();
  const grpc::Status unknown = Abort("Bearer key-b", "no-such-request", &found);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND) << unknown.error_message();
  // Another key's request answers exactly as an unknown one: its existence is not revealed.
  EXPECT_EQ(foreign.error_message(),
            "no queued or running request 'team-a-request' of this client");
  EXPECT_EQ(unknown.error_message(),
            "no queued or running request 'no-such-request' of this client");
  // Still decoding after the foreign Abort.
  const int before = tokens;
  while (tokens < before + 2 && reader->Read(&response)) tokens += response.token_ids_size();
  EXPECT_GE(tokens, before + 2);

  ASSERT_TRUE(Abort("Bearer key-a", "team-a-request", &found).ok());
  EXPECT_TRUE(found);
  pb::GenerateResponse last;
  while (reader->Read(&response)) last = response;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.finish_reason(), pb::FINISH_REASON_CANCELLED);
}

TEST_F(GrpcAuthTest, ServerAssignedIdsAreUnguessable) {
  std::set<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer key-a");
    pb::GenerateRequest r = GreedyIdsRequest({100, 200, 300}, 1);
    auto result = ReadStream(context, *stub_, r);
    ASSERT_TRUE(result.status.ok()) << Describe(result.status);
    ASSERT_TRUE(result.final.has_value());
    const std::string& id = result.final->request_id();
    EXPECT_EQ(id.size(), 36u) << id;
    EXPECT_EQ(id.substr(0, 4), "req-") << id;
    EXPECT_TRUE(ids.insert(id).second) << id;
  }
}

// ---------------------------------------------------------------------------------------------
// Reflection, malformed requests, the receive limit (no authentication)

TEST(GrpcHardeningTest, ReflectionIsOffUnlessAskedFor) {
  // ServerReflectionRequest{list_services: ""}: field 7, empty string.
  const std::string list_services("\x3a\x00", 2);
  const std::string method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
  auto off = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(RawCall((*off)->NewChannel(), method, list_services).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  std::vector<std::string> args = ServerProcess::Stories260KArgs();
  args.push_back("--reflection");
  auto on = ServerProcess::Start(args);
  ASSERT_TRUE(on.ok()) << on.status();
  const grpc::Status status = RawCall((*on)->NewChannel(), method, list_services);
  EXPECT_TRUE(status.ok()) << Describe(status);
}

TEST(GrpcHardeningTest, MalformedRequestsAreInvalidArgumentWithAMessage) {
  auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  const auto channel = (*server)->NewChannel();
  // A length-delimited field whose length runs past the end: no protobuf parser accepts it.
  const std::string garbage(
      "\x0a\xff\xff\xff\x0f"
      "abc",
      8);
  for (const char* method : {"/kvserve.v1.Inference/Generate", "/kvserve.v1.Inference/Abort",
                             "/kvserve.v1.Inference/GetModelInfo"}) {
    const grpc::Status status = RawCall(channel, method, garbage);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << method << ": " << Describe(status);
    EXPECT_NE(status.error_message().find("could not be parsed"), std::string::npos)
        << Describe(status);
  }
  // The server still serves.
  auto stub = (*server)->NewStub();
  EXPECT_TRUE(GenerateAll(*stub, GreedyTextRequest("Once upon a time", 4)).status.ok());
}

TEST(GrpcHardeningTest, PromptsBeyondTheContextAreRefusedBeforeTokenizing) {
  auto server = ServerProcess::Start(ServerProcess::Stories260KArgs());
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();
  // stories260K: 512 tokens of context; the receive limit is 512 x 64 B + 1 MiB.
  // The probe's 30 MB prompt: refused by the receive limit before it is parsed.
  for (const size_t bytes : {size_t{2} << 20, size_t{30} << 20}) {
    const StreamResult huge = GenerateAll(*stub, GreedyTextRequest(std::string(bytes, 'a'), 4));
    EXPECT_EQ(huge.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << bytes << ": " << Describe(huge.status);
  }
  // Under the receive limit but more than 512 tokens of the longest piece can cover.
  const StreamResult long_text =
      GenerateAll(*stub, GreedyTextRequest(std::string(512 << 10, 'a'), 4));
  EXPECT_EQ(long_text.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << Describe(long_text.status);
  EXPECT_NE(long_text.status.error_message().find("more than the model's context"),
            std::string::npos)
      << Describe(long_text.status);
  // A hundred thousand stop strings (300 kB, under the receive limit): refused by the cap.
  pb::GenerateRequest stops = GreedyTextRequest("Once", 4);
  const std::string stop = "x";
  for (int i = 0; i < 100000; ++i) *stops.mutable_sampling()->add_stop() = stop;
  const StreamResult many = GenerateAll(*stub, stops);
  EXPECT_EQ(many.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(many.status);
  EXPECT_NE(many.status.error_message().find("--max-stop-strings"), std::string::npos)
      << Describe(many.status);
  // A megabyte-long id is refused and never logged in full.
  pb::GenerateRequest long_id = GreedyTextRequest("Once", 4);
  long_id.set_request_id(std::string(1 << 19, 'i'));
  const StreamResult id = GenerateAll(*stub, long_id);
  EXPECT_EQ(id.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(id.status.error_message().find("request_id is 524288 bytes"), std::string::npos)
      << id.status.error_message().substr(0, 200);
  EXPECT_LT(id.status.error_message().size(), 1000u) << "the id is not echoed in full";
  EXPECT_EQ((*server)->Log().find(std::string(1000, 'i')), std::string::npos);
  // The probe's huge freekv budget (its memory grew to 23 GB): refused before any policy exists,
  // in both forms of the KV policy.
  pb::GenerateRequest budget = GreedyTextRequest("Once", 4);
  budget.mutable_kv_policy()->mutable_freekv()->set_budget(std::numeric_limits<int32_t>::max());
  const StreamResult oneof = GenerateAll(*stub, budget);
  EXPECT_EQ(oneof.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(oneof.status.error_message().rfind(
                "kv_policy.freekv.budget must be <= the model's context (512), got 2147483647", 0),
            0u)
      << Describe(oneof.status);
  budget.mutable_kv_policy()->Clear();
  budget.mutable_kv_policy()->set_name("quest");
  budget.mutable_kv_policy()->set_budget(std::numeric_limits<int32_t>::max());
  const StreamResult flat = GenerateAll(*stub, budget);
  EXPECT_EQ(flat.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(flat.status.error_message().rfind("kv_policy.budget must be <= the model's context", 0),
            0u)
      << Describe(flat.status);
  EXPECT_TRUE(GenerateAll(*stub, GreedyTextRequest("Once upon a time", 4)).status.ok());
}

TEST(GrpcHardeningTest, DeadlineExpiriesAreCountedAsDeadlines) {
  // The client's own deadline cancels the stream about when the server's copy (one hop later)
  // expires; either way the request ends as a deadline, not a cancellation. Deadlines of a
  // second or more keep the hop, which grows when CI loads the machine, inside the server's slack.
  auto server = ServerProcess::Start({"--model", "synthetic:smollm2-135m", "--max-running", "1",
                                      "--max-batch-tokens", "8", "--kv-cache-memory", "256MiB"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();
  constexpr int kRequests = 6;
  for (int i = 0; i < kRequests; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(1000 + 100 * i));
    const StreamResult r = ReadStream(context, *stub, LongRequest(absl::StrCat("deadline-", i)));
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << Describe(r.status);
  }
  ASSERT_TRUE(WaitUntilIdle(*stub).ok());
  const std::string log = (*server)->Log();
  int deadlines = 0;
  int cancelled = 0;
  for (size_t at = 0; (at = log.find("finish_reason=", at)) != std::string::npos; ++at) {
    deadlines += log.compare(at, 22, "finish_reason=deadline") == 0;
    cancelled += log.compare(at, 23, "finish_reason=cancelled") == 0;
  }
  EXPECT_EQ(deadlines, kRequests) << log;
  EXPECT_EQ(cancelled, 0) << log;
}

// ---------------------------------------------------------------------------------------------
// TLS and mutual TLS

// A CA and certificates it signs for 127.0.0.1, made with openssl in `dir`.
class Pki {
 public:
  explicit Pki(std::string dir) : dir_(std::move(dir)) {}

  // ca-NAME.key / ca-NAME.pem
  void MakeCa(const std::string& name) {
    Run(absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca-", name,
                     " -keyout ", Path("ca-" + name + ".key"), " -out ",
                     Path("ca-" + name + ".pem")));
  }
  // NAME.key / NAME.pem signed by ca-CA, valid for 127.0.0.1 and localhost.
  void MakeCert(const std::string& name, const std::string& ca) {
    WriteFile(Path(name + ".ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    Run(absl::StrCat("openssl req -newkey rsa:2048 -nodes -subj /CN=", name, " -keyout ",
                     Path(name + ".key"), " -out ", Path(name + ".csr")));
    Run(absl::StrCat("openssl x509 -req -days 2 -in ", Path(name + ".csr"), " -CA ",
                     Path("ca-" + ca + ".pem"), " -CAkey ", Path("ca-" + ca + ".key"),
                     " -CAcreateserial -extfile ", Path(name + ".ext"), " -out ",
                     Path(name + ".pem")));
  }
  std::string Path(const std::string& file) const { return dir_ + "/" + file; }

  // Channel credentials trusting ca-CA, with the client certificate NAME when given.
  std::shared_ptr<grpc::ChannelCredentials> Client(const std::string& ca,
                                                   const std::string& name = "") const {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ReadFile(Path("ca-" + ca + ".pem"));
    if (!name.empty()) {
      options.pem_private_key = ReadFile(Path(name + ".key"));
      options.pem_cert_chain = ReadFile(Path(name + ".pem"));
    }
    return grpc::SslCredentials(options);
  }

 private:
  void Run(const std::string& command) {
    const CommandResult r = RunCommand(command);
    ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.err;
  }
  std::string dir_;
};

std::shared_ptr<grpc::Channel> ChannelTo(const ServerProcess& server,
                                         std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  return grpc::CreateCustomChannel(server.address(), credentials, args);
}

grpc::Status StatusOver(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = pb::Inference::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 5s);
  pb::ServerStatus status;
  return stub->GetServerStatus(&context, pb::GetServerStatusRequest(), &status);
}

TEST(GrpcTlsTest, TlsClientsConnectAndPlaintextOnesDoNot) {
  Pki pki(MakeTempDir());
  pki.MakeCa("one");
  pki.MakeCert("server", "one");
  std::vector<std::string> args = ServerProcess::Stories260KArgs();
  args.insert(args.end(),
              {"--tls-cert", pki.Path("server.pem"), "--tls-key", pki.Path("server.key")});
  auto server = ServerProcess::Start(args, pki.Client("one"));
  ASSERT_TRUE(server.ok()) << server.status();
  const grpc::Status tls = StatusOver(ChannelTo(**server, pki.Client("one")));
  EXPECT_TRUE(tls.ok()) << Describe(tls);
  auto stub = pb::Inference::NewStub(ChannelTo(**server, pki.Client("one")));
  EXPECT_TRUE(GenerateAll(*stub, GreedyTextRequest("Once upon a time", 4)).status.ok());
  EXPECT_FALSE(StatusOver(ChannelTo(**server, grpc::InsecureChannelCredentials())).ok());
}

TEST(GrpcTlsTest, MutualTlsRefusesClientsWithoutACertificate) {
  Pki pki(MakeTempDir());
  pki.MakeCa("one");
  pki.MakeCa("other");
  pki.MakeCert("server", "one");
  pki.MakeCert("client", "one");
  pki.MakeCert("stranger", "other");
  std::vector<std::string> args = ServerProcess::Stories260KArgs();
  args.insert(args.end(), {"--tls-cert", pki.Path("server.pem"), "--tls-key",
                           pki.Path("server.key"), "--tls-client-ca", pki.Path("ca-one.pem")});
  auto server = ServerProcess::Start(args, pki.Client("one", "client"));
  ASSERT_TRUE(server.ok()) << server.status();
  const grpc::Status with_cert = StatusOver(ChannelTo(**server, pki.Client("one", "client")));
  EXPECT_TRUE(with_cert.ok()) << Describe(with_cert);
  EXPECT_FALSE(StatusOver(ChannelTo(**server, pki.Client("one"))).ok()) << "no certificate";
  EXPECT_FALSE(StatusOver(ChannelTo(**server, pki.Client("one", "stranger"))).ok())
      << "a certificate of another CA";
}

TEST(GrpcTlsTest, ARotatedCertificateIsServedWithoutARestart) {
  // Key and certificate live in a directory reached through a symlink, swapped atomically as
  // Kubernetes does with a mounted Secret.
  const std::string dir = MakeTempDir();
  Pki pki(dir);
  pki.MakeCa("old");
  pki.MakeCa("new");
  pki.MakeCert("server-old", "old");
  pki.MakeCert("server-new", "new");
  namespace fs = std::filesystem;
  for (const char* version : {"old", "new"}) {
    fs::create_directory(pki.Path(std::string("v-") + version));
    fs::copy_file(pki.Path(std::string("server-") + version + ".pem"),
                  pki.Path(std::string("v-") + version + "/tls.crt"));
    fs::copy_file(pki.Path(std::string("server-") + version + ".key"),
                  pki.Path(std::string("v-") + version + "/tls.key"));
  }
  fs::create_directory_symlink(pki.Path("v-old"), pki.Path("current"));
  std::vector<std::string> args = ServerProcess::Stories260KArgs();
  args.insert(args.end(), {"--tls-cert", pki.Path("current/tls.crt"), "--tls-key",
                           pki.Path("current/tls.key"), "--tls-reload-interval", "1"});
  auto server = ServerProcess::Start(args, pki.Client("old"));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(StatusOver(ChannelTo(**server, pki.Client("old"))).ok());
  EXPECT_FALSE(StatusOver(ChannelTo(**server, pki.Client("new"))).ok());

  fs::create_directory_symlink(pki.Path("v-new"), pki.Path("next"));
  fs::rename(pki.Path("next"), pki.Path("current"));  // atomic swap of the symlink
  // The watcher re-reads every second; new connections get the new certificate.
  bool rotated = false;
  for (int i = 0; i < 100 && !rotated; ++i) {
    rotated = StatusOver(ChannelTo(**server, pki.Client("new"))).ok();
    if (!rotated) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(rotated) << (*server)->Log();
  EXPECT_FALSE(StatusOver(ChannelTo(**server, pki.Client("old"))).ok());
}

// The clients speak what the server asks for: kvserve-cli client and health, and kvserve-bench,
// with --tls-ca / --tls-cert / --tls-key and --api-key / --api-key-file against a server with
// mutual TLS and API keys.
TEST(GrpcClientCredentialsTest, CliAndBenchSendApiKeysOverMutualTls) {
  const std::string dir = MakeTempDir();
  Pki pki(dir);
  pki.MakeCa("one");
  pki.MakeCert("server", "one");
  pki.MakeCert("client", "one");
  WriteFile(dir + "/server-keys", Sha256Hex("key-a") + "\n");
  WriteFile(dir + "/client-key", "key-a\n");
  std::vector<std::string> args = ServerProcess::Stories260KArgs();
  args.insert(args.end(),
              {"--tls-cert", pki.Path("server.pem"), "--tls-key", pki.Path("server.key"),
               "--tls-client-ca", pki.Path("ca-one.pem"), "--api-key-file", dir + "/server-keys"});
  auto server = ServerProcess::Start(args, pki.Client("one", "client"));
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string bin = std::string(KVSERVE_BIN_DIR);
  const std::string tls =
      absl::StrCat(" --tls-ca ", pki.Path("ca-one.pem"), " --tls-cert ", pki.Path("client.pem"),
                   " --tls-key ", pki.Path("client.key"));
  const std::string client = absl::StrCat(bin, "/kvserve-cli client --server ",
                                          (*server)->address(), tls, " --timeout 60 ");
  const std::string request = " --prompt-ids 1,403 --max-tokens 4 --temperature 0 --format json";

  const CommandResult with_file =
      RunCommand(client + "--api-key-file " + dir + "/client-key" + request);
  ASSERT_EQ(with_file.exit_code, 0) << with_file.err;
  EXPECT_NE(with_file.out.find("\"completion_tokens\":4"), std::string::npos) << with_file.out;
  const CommandResult with_env = RunCommand("KVSERVE_API_KEY=key-a " + client + request);
  EXPECT_EQ(with_env.exit_code, 0) << with_env.err;

  const CommandResult no_key = RunCommand(client + request);
  EXPECT_EQ(no_key.exit_code, 1);
  EXPECT_NE(no_key.err.find("UNAUTHENTICATED"), std::string::npos) << no_key.err;
  const CommandResult wrong_key = RunCommand(client + "--api-key key-b" + request);
  EXPECT_NE(wrong_key.err.find("UNAUTHENTICATED"), std::string::npos) << wrong_key.err;
  // Without a client certificate the handshake fails: no answer at all.
  const CommandResult no_cert = RunCommand(
      absl::StrCat(bin, "/kvserve-cli client --server ", (*server)->address(), " --tls-ca ",
                   pki.Path("ca-one.pem"), " --api-key key-a --timeout 10", request));
  EXPECT_EQ(no_cert.exit_code, 1);
  EXPECT_EQ(no_cert.err.find("UNAUTHENTICATED"), std::string::npos) << no_cert.err;
  const CommandResult half =
      RunCommand(absl::StrCat(bin, "/kvserve-cli client --server ", (*server)->address(),
                              " --tls-cert ", pki.Path("client.pem"), request));
  EXPECT_NE(half.err.find("--tls-cert and --tls-key go together"), std::string::npos) << half.err;

  const CommandResult health =
      RunCommand(absl::StrCat(bin, "/kvserve-cli health --server ", (*server)->address(), tls));
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_NE(health.out.find("SERVING"), std::string::npos) << health.out;

  const CommandResult bench =
      RunCommand(absl::StrCat("cd ", dir, " && ", bin, "/kvserve-bench --server ",
                              (*server)->address(), tls, " --api-key-file ", dir,
                              "/client-key --disable-tqdm --warmup 1 --num-prompts 3 "
                              "--random-input-len 16 --random-output-len 4"));
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_NE(bench.out.find("\"completed\":3"), std::string::npos) << bench.out;
  const CommandResult bench_no_key = RunCommand(absl::StrCat(
      "cd ", dir, " && ", bin, "/kvserve-bench --server ", (*server)->address(), tls,
      " --disable-tqdm --warmup 1 --num-prompts 3 --random-input-len 16 --random-output-len 4"));
  EXPECT_NE(bench_no_key.exit_code, 0);
  EXPECT_NE(bench_no_key.err.find("UNAUTHENTICATED"), std::string::npos) << bench_no_key.err;

  // The Python example client takes the same flags (where Debian's python3-grpcio is installed).
  if (RunCommand("/usr/bin/python3 -c 'import grpc' >/dev/null").exit_code != 0) return;
  const std::string python = absl::StrCat(
      "/usr/bin/python3 ",
      (std::filesystem::path(KVSERVE_MODELS_DIR).parent_path() / "tools/kvserve_client.py")
          .string(),
      " --server ", (*server)->address(), tls, " --prompt-ids 1,403 --max-tokens 4 --json");
  const CommandResult py = RunCommand(python + " --api-key-file " + dir + "/client-key");
  ASSERT_EQ(py.exit_code, 0) << py.err;
  EXPECT_NE(py.out.find("\"completion_tokens\": 4"), std::string::npos) << py.out;
  const CommandResult py_no_key = RunCommand(python);
  EXPECT_EQ(py_no_key.exit_code, 1);
  EXPECT_NE(py_no_key.err.find("UNAUTHENTICATED"), std::string::npos) << py_no_key.err;
}

}  // namespace
}  // namespace kvserve::testing
