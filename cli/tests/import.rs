//! `igloo import prisma` as a user runs it: an application's schema (relations, enums with
//! `@map`, PostgreSQL native types, an index, a composite id) imported into a project, then
//! `igloo dev` creates its tables on real ClickHouse 18.16 and a record per model is ingested
//! and lands. Plus the command's edges: stdout, --out, --force, --models, syntax errors, folders.

use std::path::Path;
use std::time::Duration;

mod support;
use support::*;

const APP: &str = r#"datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

generator client {
  provider = "prisma-client-js"
}

enum Role {
  READER @map("reader")
  WRITER @map("writer") /// may publish
}

/// Someone with an account.
model User {
  id        String   @id @default(uuid()) @db.Uuid
  email     String   @unique @db.VarChar(320)
  role      Role     @default(READER)
  createdAt DateTime @default(now()) @db.Timestamptz(6)
  updatedAt DateTime @updatedAt
  posts     Post[]
  orders    Order[]

  @@map(name: "users")
}

model Post {
  id       Int      @id() @default(autoincrement())
  title    String   @db.VarChar(200)
  body     String?  @db.Text
  rating   Decimal  @db.Decimal(3, 2)
  views    Int      @default(value: 0) @db.SmallInt
  meta     Json?    @db.JsonB
  author   User     @relation(fields: [authorId], references: [id], onDelete: Cascade)
  authorId String   @db.Uuid
  tags     Tag[]

  @@index([authorId])
}

model Tag {
  id    Int    @id @default(autoincrement())
  name  String @unique
  posts Post[]
}

model Order {
  userId   String   @db.Uuid
  number   Int
  total    Decimal  @db.Decimal(10, 2)
  placedAt DateTime @default(now())
  user     User     @relation(fields: [userId], references: [id])

  @@id([userId, number], name: "orderKey")
}
"#;

fn import(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("igloo"))
        .current_dir(dir)
        .args(["import", "prisma"])
        .args(args)
        .env_remove("IGLOO_CLICKHOUSE_TARGET")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_imported_application_schema_runs_under_igloo_dev() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    // An empty project: the template's model, its API and its routes go.
    std::fs::remove_file(root.join("schema/measurement.prisma")).unwrap();
    std::fs::remove_file(root.join("apis/tag_stats.sql")).unwrap();
    let config = std::fs::read_to_string(root.join("igloo.yaml")).unwrap();
    let config = config.replace("  routes:\n    /save: Measurement\n    /api: Measurement.samples\n", "");
    std::fs::write(root.join("igloo.yaml"), config).unwrap();
    std::fs::write(tmp.path().join("schema.prisma"), APP).unwrap();

    // Native mode runs Debian's ClickHouse 18.16, so the import targets it.
    let out = import(&root, &["../schema.prisma", "--out", "schema/app.prisma", "--target", "18.16"]);
    let report = text(&out.stderr);
    assert!(out.status.success(), "{report}");
    for line in [
        "datasource db: igloo.yaml holds the ClickHouse and broker settings",
        "Post.author: join User on Post.authorId = User.id",
        "Post.tags: many-to-many with Tag: Prisma keeps the pairs in table `_PostToTag`",
        "User.id: String @db.Uuid → Uuid",
        "User.createdAt: @db.Timestamptz(6) → DateTime in seconds (ClickHouse 18.16 has no DateTime64)",
        "Post.id: @default(autoincrement()) removed: ClickHouse has no sequences; the client sends the value",
        "User.updatedAt: @updatedAt → @default(now())",
        "Post(authorId): leads the sorting key: (authorId, id)",
        "✓ imported 4 models and 1 enum into schema/app.prisma; it passes `igloo check` for ClickHouse 18.16",
    ] {
        assert!(report.contains(line), "missing `{line}` in:\n{report}");
    }
    let schema = std::fs::read_to_string(root.join("schema/app.prisma")).unwrap();
    assert!(schema.contains("  WRITER @map(\"writer\")") && schema.contains("@@map(\"users\")"), "{schema}");

    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    for table in ["users", "Post", "Tag", "Order"] {
        dev.expect(&format!("+ table devapp.{table}"), START);
    }
    dev.expect("Ready in", START);

    let user = "6f1c2a9e-3b7d-4c55-9a61-0d2b8f7e4a10";
    let records = [
        ("User", format!(r#"{{"id": "{user}", "email": "ada@example.com", "role": "writer"}}"#)),
        (
            "Post",
            format!(r#"{{"id": 1, "title": "Hello", "rating": 4.5, "authorId": "{user}", "meta": "{{\"a\": 1}}"}}"#),
        ),
        ("Tag", r#"{"id": 7, "name": "rust"}"#.to_string()),
        ("Order", format!(r#"{{"userId": "{user}", "number": 1, "total": 19.99}}"#)),
    ];
    for (model, body) in &records {
        let r =
            http_post(&ports.api(&format!("/ingest/{model}")), &[("Content-Type", "application/json")], body.as_str());
        assert_eq!(r.status, 200, "POST /ingest/{model}: {}", r.body);
    }
    let ch = ports.clickhouse();
    for table in ["users", "Post", "Tag", "Order"] {
        eventually(Duration::from_secs(20), &format!("a row in {table}"), || {
            let n = ch.execute(&format!("SELECT count() FROM devapp.`{table}`")).ok()?;
            (n.trim() == "1").then_some(())
        });
    }
    // Defaults the import kept or replaced were filled; the mapped enum value is stored.
    let row = ch.execute("SELECT toString(role), email, createdAt > 0, updatedAt > 0 FROM devapp.users").unwrap();
    assert_eq!(row.trim(), "writer\tada@example.com\t1\t1");
    let post = ch.execute("SELECT views, toString(rating), authorId FROM devapp.Post").unwrap();
    assert_eq!(post.trim(), format!("0\t4.50\t{user}"));
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn import_edges_stdout_overwrite_models_and_syntax_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("schema.prisma"), APP).unwrap();

    // No --out: the schema on stdout, the report on stderr; no project needed.
    let out = import(dir, &["schema.prisma"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("// Imported by `igloo import prisma` from schema.prisma."), "{stdout}");
    assert!(stdout.contains("@db.DateTime64(6)"), "current ClickHouse keeps the precision: {stdout}");
    assert!(text(&out.stderr).contains("into stdout"));

    // --out refuses to overwrite without --force.
    std::fs::write(dir.join("app.prisma"), "keep me").unwrap();
    let out = import(dir, &["schema.prisma", "--out", "app.prisma"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("app.prisma exists; pass --force to overwrite it"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("app.prisma")).unwrap(), "keep me");
    let out = import(dir, &["schema.prisma", "--out", "app.prisma", "--force", "--models", "User,Order"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(dir.join("app.prisma")).unwrap();
    assert!(written.contains("model User {") && written.contains("model Order {") && !written.contains("model Post"));
    assert!(text(&out.stderr).contains("model Post: not in --models"), "{}", text(&out.stderr));

    // Unknown models are named, with the ones there are.
    let out = import(dir, &["schema.prisma", "--models", "Usr"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no model named Usr (the schema has User, Post, Tag, Order)"),
        "{}",
        text(&out.stderr)
    );

    // A syntax error keeps its file:line:col diagnostic.
    std::fs::write(dir.join("broken.prisma"), "model A {\n  id Int @id @default(\n}\n").unwrap();
    let out = import(dir, &["broken.prisma"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--> broken.prisma:2:") && err.contains("broken.prisma has syntax errors"), "{err}");

    // A source Prisma itself rejects (an unknown type) imports, but the result is named as
    // failing igloo check, with the problem, and the exit status says so.
    std::fs::write(dir.join("typo.prisma"), "model A {\n  id Int @id\n  n Flot\n}\n").unwrap();
    let out = import(dir, &["typo.prisma", "--out", "typo.igloo.prisma"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("unknown type `Flot`") && err.contains("fix the problems above in the written file"), "{err}");
    assert!(dir.join("typo.igloo.prisma").exists());

    // prismaSchemaFolder: a directory of files is one schema.
    let folder = dir.join("prisma/schema");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("main.prisma"), "datasource db {\n  provider = \"mysql\"\n  url = env(\"U\")\n}\n")
        .unwrap();
    std::fs::write(folder.join("user.prisma"), "model User {\n  id Int @id @db.UnsignedInt\n  posts Post[]\n}\n")
        .unwrap();
    std::fs::write(
        folder.join("post.prisma"),
        "model Post {\n  id Int @id\n  user User @relation(fields: [userId], references: [id])\n  userId Int @db.UnsignedInt\n}\n",
    )
    .unwrap();
    let out = import(dir, &["prisma/schema"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("userId Int @db.UInt32"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("Post.user: join User on Post.userId = User.id"));

    // --help explains what changes.
    let out = import(dir, &["--help"]);
    assert!(text(&out.stdout).contains("relation fields go and their"), "{}", text(&out.stdout));
}
