// The Express app of the differential test (tests/differential): Express's own router, as an app uses it.
// Case-insensitive and non-strict (a trailing slash ignored): Express's defaults. method-override turns a
// POST into the method `_method` (query) or X-HTTP-Method-Override names, as Express apps commonly do.
"use strict";
const express = require("express");
const methodOverride = require("method-override");

const app = express();
app.use(methodOverride("X-HTTP-Method-Override"));
app.use(methodOverride("_method"));

const protectedRoute = (name) => (req, res) => res.type("text/plain").send("protected:" + name);
app.all("/admin", protectedRoute("admin"));
app.all("/reports", protectedRoute("reports"));
app.all("/Settings", protectedRoute("settings"));
app.delete("/posts/:id", protectedRoute("posts-delete"));
app.all("/public", (req, res) => res.type("text/plain").send("public"));
app.use((req, res) => res.status(404).type("text/plain").send("not found"));

const server = app.listen(Number(process.env.PORT), "127.0.0.1", () => {
  console.log("express listening on " + process.env.PORT);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
