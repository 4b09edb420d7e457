# Drives a treeflow server with Kinetic Data's Ruby SDK (kinetic_sdk), unmodified, as a team's
# existing Kinetic scripts would: the SDK's default headers (HTTP Basic) and an app_server_url
# ending in /kinetic-task. Prints one JSON object: each call's status and content, for
# tests/test_kinetic_sdk.py to check.
#
# ruby drive.rb SDK_DIR SERVER_URL USERNAME PASSWORD EXPORT_XML EXPORT_DIR
require "json"

sdk_dir, server, username, password, export_xml, export_dir = ARGV
$LOAD_PATH.unshift File.join(sdk_dir, "lib")
require "kinetic_sdk"

task = KineticSdk::Task.new(
  app_server_url: "#{server}/kinetic-task",
  username: username,
  password: password,
  options: { export_directory: export_dir, log_level: "off" }
)
out = {}
record = lambda do |name, response|
  out[name] = { "status" => response.status, "content" => response.content }
  response
end

record.call("engine_info", task.engine_info)
record.call("import_tree", task.import_tree(File.new(export_xml, "rb"), true))
record.call("find_trees", task.find_trees({ "source" => "Kinetic Request" }))
imported = "Kinetic Request :: HR > Onboarding :: Onboard Employee"
record.call("find_tree", task.find_tree(imported))
record.call("find_routines", task.find_routines)
task.export_tree(imported)
files = Dir[File.join(export_dir, "**", "*.xml")]
out["export_tree"] = { "files" => files.map { |f| f.delete_prefix(export_dir) },
                       "content" => files.empty? ? nil : File.read(files.first) }

ticket = "Kinetic Request :: Service Desk :: Ticket Progress"
started = record.call("run_tree", task.run_tree(ticket, { "Ticket" => "T-1" }))
run_id = started.content.dig("run", "id")
token = nil
found = nil
600.times do
  found = task.find_runs({ "include" => "details,tasks", "tree" => "Ticket Progress" })
  run = (found.content["runs"] || []).find { |r| r["id"] == run_id }
  deferred = run && (run["tasks"] || []).find { |t| t["nodeName"] == "Work Ticket" && t["token"] }
  token = deferred && deferred["token"]
  break if token
  sleep 0.1
end
record.call("find_runs", found)
out["token"] = token
record.call(
  "complete_deferred_task",
  task.complete_deferred_task("Kinetic Request", { "token" => token, "message" => "done" })
)
completed = nil
600.times do
  found = task.find_runs({ "include" => "tasks", "id" => run_id })
  completed = (found.content["runs"] || []).find { |r| r["status"] == "Completed" }
  break if completed
  sleep 0.1
end
out["completed"] = { "run" => completed }
record.call("delete_run", task.delete_run(run_id))
record.call("find_handlers", task.find_handlers)
record.call("find_sources", task.find_sources)
record.call("find_errors", task.find_errors)
out["run_id"] = run_id
puts JSON.generate(out)
