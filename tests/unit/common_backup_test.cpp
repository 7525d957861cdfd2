// Proves the backup rules on real files and a real SQLite database: a destination never leaves
// the backup root (.., absolute paths, symbolic links) nor reuses a non-empty folder; a backup is
// trusted only when every file matches its manifest's size and SHA-256; a restore refuses a
// database in use, replaces the old file and its WAL, keeps a newer vote and the instance id.
#include "common/backup.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace chorus::backup {
namespace {

namespace fs = std::filesystem;

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("chorus-backup-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "root");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void run_sql(const fs::path& file, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }

  static int64_t query_int(const fs::path& file, const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open(file.c_str(), &db);
    sqlite3_stmt* s = nullptr;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
  }

  // A backup folder holding a database with `rows` rows and vote epoch `epoch`, and its manifest.
  fs::path make_backup(const std::string& name, int rows, int64_t epoch) {
    const fs::path folder = dir_ / "root" / name;
    fs::create_directories(folder);
    const fs::path db = folder / kDatabaseFileName;
    std::string sql =
        "CREATE TABLE t(x); CREATE TABLE hard_state(id INTEGER PRIMARY KEY, epoch INTEGER, "
        "voted_for TEXT); INSERT INTO hard_state VALUES(1," +
        std::to_string(epoch) + ",'a');";
    for (int i = 0; i < rows; ++i) sql += "INSERT INTO t VALUES(" + std::to_string(i) + ");";
    run_sql(db, sql);
    Manifest m;
    m.node = "n1";
    m.cluster = "default";
    m.log_position = 1234;
    m.commit_position = 1000;
    std::string error;
    m.files.push_back({kDatabaseFileName, static_cast<int64_t>(fs::file_size(db)),
                       sha256_file(db.string(), &error)});
    std::ofstream(folder / kManifestFileName) << to_json(m);
    return folder;
  }

  fs::path dir_;
};

TEST_F(BackupTest, Sha256OfKnownBytes) {
  std::ofstream(dir_ / "abc") << "abc";
  std::string error;
  EXPECT_EQ(sha256_file((dir_ / "abc").string(), &error),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_file((dir_ / "missing").string(), &error), "");
  EXPECT_NE(error, "");
}

TEST_F(BackupTest, DestinationStaysInsideTheRoot) {
  const std::string root = (dir_ / "root").string();
  std::string error;
  EXPECT_EQ(destination_in_root(root, "n1-a", &error), (dir_ / "root" / "n1-a").string());
  EXPECT_EQ(destination_in_root(root, root + "/deeper/n1", &error),
            (dir_ / "root" / "deeper" / "n1").string());
  for (const std::string& bad :
       {std::string("../escape"), std::string("a/../../escape"), (dir_ / "elsewhere").string(),
        std::string("."), root, std::string("")}) {
    error.clear();
    EXPECT_FALSE(destination_in_root(root, bad, &error)) << bad;
    EXPECT_NE(error, "") << bad;
  }
  error.clear();
  EXPECT_FALSE(destination_in_root("", "n1", &error));
  EXPECT_NE(error.find("no backup root"), std::string::npos);
}

TEST_F(BackupTest, DestinationRefusesALinkOutOfTheRoot) {
  fs::create_directories(dir_ / "outside");
  fs::create_directory_symlink(dir_ / "outside", dir_ / "root" / "link");
  std::string error;
  EXPECT_FALSE(destination_in_root((dir_ / "root").string(), "link/n1", &error));
  EXPECT_NE(error.find("not inside the backup root"), std::string::npos) << error;
}

TEST_F(BackupTest, DestinationRefusesANonEmptyFolderOnly) {
  const std::string root = (dir_ / "root").string();
  fs::create_directories(dir_ / "root" / "empty");
  fs::create_directories(dir_ / "root" / "full");
  std::ofstream(dir_ / "root" / "full" / "x") << "x";
  std::ofstream(dir_ / "root" / "file") << "x";
  std::string error;
  EXPECT_TRUE(destination_in_root(root, "empty", &error)) << error;
  EXPECT_FALSE(destination_in_root(root, "full", &error));
  EXPECT_NE(error.find("not empty"), std::string::npos) << error;
  EXPECT_FALSE(destination_in_root(root, "file", &error));
}

TEST_F(BackupTest, ManifestRoundTripsAndRefusesStrangeFileNames) {
  Manifest m;
  m.node = "n2";
  m.instance_id = "i";
  m.epoch_number = 3;
  m.log_position = 99;
  m.commit_position = 90;
  m.files.push_back({"chorus.db", 4096, "ab"});
  std::string error;
  const auto back = manifest_from_json(to_json(m), &error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->node, "n2");
  EXPECT_EQ(back->epoch_number, 3);
  EXPECT_EQ(back->log_position, 99);
  EXPECT_EQ(back->commit_position, 90);
  ASSERT_EQ(back->files.size(), 1u);
  EXPECT_EQ(back->files[0].bytes, 4096);
  for (const char* name : {"../chorus.db", "/etc/passwd", "a/b", "..", ""}) {
    m.files = {{name, 1, "ab"}};
    EXPECT_FALSE(manifest_from_json(to_json(m), &error)) << name;
  }
  m.files.clear();
  m.format = kManifestFormat + 1;
  EXPECT_FALSE(manifest_from_json(to_json(m), &error));
  EXPECT_NE(error.find("format"), std::string::npos) << error;
  EXPECT_FALSE(manifest_from_json("not json", &error));
}

TEST_F(BackupTest, VerifyFindsADamagedOrIncompleteBackup) {
  const fs::path folder = make_backup("b1", 10, 1);
  std::string error;
  EXPECT_TRUE(verify_backup(folder.string(), &error)) << error;
  // One byte changed, same size: only the checksum tells.
  {
    std::fstream f(folder / kDatabaseFileName, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x7f');
  }
  error.clear();
  EXPECT_FALSE(verify_backup(folder.string(), &error));
  EXPECT_NE(error.find("SHA-256"), std::string::npos) << error;
  // Truncated.
  fs::resize_file(folder / kDatabaseFileName, 100);
  error.clear();
  EXPECT_FALSE(verify_backup(folder.string(), &error));
  EXPECT_NE(error.find("bytes"), std::string::npos) << error;
  // No manifest: an unfinished backup.
  fs::remove(folder / kManifestFileName);
  error.clear();
  EXPECT_FALSE(verify_backup(folder.string(), &error));
  EXPECT_NE(error.find("manifest"), std::string::npos) << error;
}

TEST_F(BackupTest, BackupInRootFindsExistingFoldersOnly) {
  make_backup("b1", 1, 1);
  std::string error;
  EXPECT_TRUE(backup_in_root((dir_ / "root").string(), "b1", &error)) << error;
  EXPECT_FALSE(backup_in_root((dir_ / "root").string(), "nope", &error));
  EXPECT_FALSE(backup_in_root((dir_ / "root").string(), "../root/../..", &error));
}

TEST_F(BackupTest, RestoreSeedsANewDataFolder) {
  const fs::path folder = make_backup("b1", 25, 2);
  const fs::path data = dir_ / "data" / "n4";
  std::string error;
  const auto m = restore_backup(folder.string(), data.string(), &error);
  ASSERT_TRUE(m) << error;
  EXPECT_EQ(m->log_position, 1234);
  EXPECT_EQ(query_int(data / kDatabaseFileName, "SELECT COUNT(*) FROM t"), 25);
  EXPECT_FALSE(fs::exists(data / "chorus.db.restoring"));
}

TEST_F(BackupTest, RestoreReplacesAStoppedNodesFileKeepingItsNewerVoteAndIdentity) {
  const fs::path folder = make_backup("b1", 5, 2);
  const fs::path data = dir_ / "data" / "n1";
  fs::create_directories(data);
  run_sql(data / kDatabaseFileName,
          "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES(-1);"
          "CREATE TABLE hard_state(id INTEGER PRIMARY KEY, epoch INTEGER, voted_for TEXT);"
          "INSERT INTO hard_state VALUES(1, 7, 'b');");
  std::ofstream(data / "instance-id") << "keep-me\n";
  std::ofstream(data / "chorus.db-wal") << "stale wal of the old file";
  std::string error;
  ASSERT_TRUE(restore_backup(folder.string(), data.string(), &error)) << error;
  EXPECT_EQ(query_int(data / kDatabaseFileName, "SELECT COUNT(*) FROM t"), 5);
  // The node voted in epoch 7 after the backup (epoch 2) was taken: that vote stays.
  EXPECT_EQ(query_int(data / kDatabaseFileName, "SELECT epoch FROM hard_state"), 7);
  std::string id;
  std::getline(std::ifstream(data / "instance-id"), id);
  EXPECT_EQ(id, "keep-me");
}

TEST_F(BackupTest, RestoreRefusesADatabaseInUseAndADamagedBackup) {
  const fs::path folder = make_backup("b1", 5, 2);
  const fs::path data = dir_ / "data" / "n1";
  fs::create_directories(data);
  run_sql(data / kDatabaseFileName, "PRAGMA journal_mode=WAL; CREATE TABLE t(x);");
  sqlite3* running = nullptr;  // a running node holds its database open
  ASSERT_EQ(sqlite3_open((data / kDatabaseFileName).c_str(), &running), SQLITE_OK);
  sqlite3_exec(running, "SELECT COUNT(*) FROM t", nullptr, nullptr, nullptr);
  std::string error;
  EXPECT_TRUE(database_in_use((data / kDatabaseFileName).string()));
  EXPECT_FALSE(restore_backup(folder.string(), data.string(), &error));
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
  sqlite3_close(running);
  EXPECT_FALSE(database_in_use((data / kDatabaseFileName).string()));
  fs::resize_file(folder / kDatabaseFileName, 512);
  error.clear();
  EXPECT_FALSE(restore_backup(folder.string(), data.string(), &error));
  EXPECT_EQ(query_int(data / kDatabaseFileName, "SELECT COUNT(*) FROM t"), 0);
}

}  // namespace
}  // namespace chorus::backup
