import { defineSuite } from '../suite.js';

defineSuite('harness', 'deployment-saga');
